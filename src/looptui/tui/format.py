"""Small text formats shared by the screens: durations, token counts, money, diff stats."""

from __future__ import annotations

from looptui.engine.models import DiffStat


def duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def tokens(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 1_000:
        return f"{count / 1_000:.1f}k"
    return str(count)


def money(usd: float) -> str:
    return f"${usd:.2f}" if usd >= 0.01 else f"${usd:.4f}"


def diff_stat(diff: DiffStat) -> str:
    files = f"{diff.files} file{'s' if diff.files != 1 else ''}"
    return f"+{diff.added} −{diff.removed} in {files}"
