"""Small text formats shared by the screens: durations, token counts, money, diff stats."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from looptui.engine.models import DiffStat, Run


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


def cost(input_tokens: int, output_tokens: int, usd: float) -> str:
    """Tokens and money spent, as cards and titles show them ("" when nothing was)."""
    spent = input_tokens + output_tokens
    if not spent and not usd:
        return ""
    return f"{tokens(spent)} tok {money(usd)}"


def cost_of(runs: Iterable[Run]) -> str:
    """What these runs cost together, as `cost` words it."""
    spent_in = spent_out = 0
    usd = 0.0
    for run in runs:
        spent_in, spent_out = spent_in + run.input_tokens, spent_out + run.output_tokens
        usd += run.cost_usd
    return cost(spent_in, spent_out, usd)


def fit(parts: list[str], width: int, separator: str = "  ·  ") -> str:
    """Title parts (content markup) joined on as few lines as `width` allows, each part
    whole: a narrow terminal wraps a title between its parts, never cuts one off."""
    from textual.content import Content

    lines: list[list[str]] = []
    used = 0
    gap = len(separator)
    for part in parts:
        size = Content.from_markup(part).cell_length
        if lines and used + gap + size <= width:
            lines[-1].append(part)
            used += gap + size
        else:
            lines.append([part])
            used = size
    return "\n".join(separator.join(line) for line in lines)


def path_tail(path: str, width: int) -> str:
    """A path in `width` cells: home as `~`, and when still too long, its last components
    after "…/" (the whole path is a key away: copy it)."""
    home = str(Path.home())
    if home != "/" and (path == home or path.startswith(home + "/")):
        path = "~" + path[len(home) :]
    if len(path) <= width:
        return path
    tail = path[len(path) - max(1, width - 2) :]
    cut = tail.find("/")
    return "…/" + (tail[cut + 1 :] if 0 <= cut < len(tail) - 1 else tail)
