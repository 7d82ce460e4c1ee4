"""Durations as `looptui.toml` writes them: `90`, `1.5`, `"90s"`, `"10m"`, `"2h"`, `"500ms"`."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
MAX_DURATION = 30 * 24 * 3600.0  # 30 days: past it a timeout is a typo, or an overflow


def parse_duration(value: object, *, allow_zero: bool = False) -> float | None:
    """Seconds from `90`, `1.5`, `"90s"`, `"10m"`, `"2h"` or `"500ms"`; None when invalid,
    not positive (or negative, with `allow_zero`), or longer than MAX_DURATION."""
    if isinstance(value, bool):
        return None
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
        seconds = float(match.group(1)) * scale
    if seconds is None or not math.isfinite(seconds) or seconds > MAX_DURATION:
        return None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        return None
    return seconds
