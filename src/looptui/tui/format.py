"""Small text formats shared by the screens: durations, token counts, money, diff stats."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from looptui.engine.models import DiffStat, Run
from looptui.words import counted

WAIT_SHOWN = 60.0  # seconds of waiting worth a mention: a review's, not a gap between turns


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
    """ "+3 −1 in 1 file", or "no change" for none."""
    if not (diff.files or diff.added or diff.removed):
        return "no change"
    return f"+{diff.added} −{diff.removed} in {counted(diff.files, 'file')}"


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


def added_iterations(run: Run, loop_limit: int | None) -> int:
    """How many iterations feedback added to the run's limit: each comment gives the run its
    loop's max_iterations more (0 when the loop is not configured here)."""
    if loop_limit is None:
        return 0
    return max(0, run.max_iterations - loop_limit)


def iteration_short(iteration: int, run: Run, loop_limit: int | None) -> str:
    """A card's "iteration 3/5 (+2)": the run's limit, as the title words it, and what
    feedback added to it, short enough for a card of a three-column grid."""
    added = added_iterations(run, loop_limit)
    more = f" (+{added})" if added else ""
    return f"iteration {iteration}/{run.max_iterations}{more}"


def iteration_long(iteration: int, run: Run, loop_limit: int | None) -> str:
    """A title's "iteration 3/5 (2 added by feedback)"."""
    added = added_iterations(run, loop_limit)
    more = f" ({counted(added, 'iteration')} added by feedback)" if added else ""
    return f"iteration {iteration}/{run.max_iterations}{more}"


def times(working: float, waiting: float) -> str:
    """ "working 1:20" and, when it waited (for review, a usage limit), "· waited 12:03"."""
    line = f"working {duration(working)}"
    return line + (f" · waited {duration(waiting)}" if waiting >= WAIT_SHOWN else "")


def feedback_limit(run: Run, loop_limit: int | None) -> str:
    """What a comment does to a run's iterations, said before it is sent: "Sending starts
    iteration 4 and raises the run's limit from 3 to 6 iterations (3 more)" (the supervisor
    gives the run its loop's max_iterations more)."""
    if loop_limit is None:
        return f"Sending starts iteration {run.iterations + 1} of the run."
    new = run.iterations + loop_limit
    more = new - run.max_iterations
    change = (
        f"raises the run's limit from {run.max_iterations} to {counted(new, 'iteration')} "
        f"({more} more)"
        if more > 0
        else f"gives the run up to {counted(new, 'iteration')}"
    )
    return f"Sending starts iteration {run.iterations + 1} and {change}."
