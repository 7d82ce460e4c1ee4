"""Finding a word in a run's log (`/`, then `n` and `N`): where the next match is, and the
bar the word is typed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.widgets import Input


@dataclass(frozen=True)
class Match:
    """A match on laid-out line `line` (counted as `RunLog` numbers its lines, which stay
    with their text as older lines are laid out above or the oldest dropped), from column
    `start` to `end`; `wrapped`: found only by going on from the other end of the log."""

    line: int
    start: int
    end: int
    wrapped: bool = False


def find(
    lines: Sequence[str], word: str, line: int, column: int, forward: bool = True
) -> tuple[int, int, bool] | None:
    """The (line, column) of the first match of `word` (ignoring case) starting at or after
    `column` of `line` (forward), or strictly before it (backward), going on from the other
    end of `lines` when there is none that way; and whether it went round. None when `word`
    is nowhere."""
    needle = word.lower()
    if not needle or not lines:
        return None
    count = len(lines)
    line = min(max(line, 0), count - 1)
    here = _starts(lines[line], needle)
    if forward:
        ahead = [p for p in here if p >= column]
        if ahead:
            return line, ahead[0], False
        order = [*range(line + 1, count), *range(0, line)]
    else:
        behind = [p for p in here if p < column]
        if behind:
            return line, behind[-1], False
        order = [*range(line - 1, -1, -1), *range(count - 1, line, -1)]
    for index in order:
        starts = _starts(lines[index], needle)
        if starts:
            wrapped = index < line if forward else index > line
            return index, starts[0 if forward else -1], wrapped
    rest = [p for p in here if (p < column if forward else p > column)]
    if rest:  # only the start line's other part holds one: round the whole log
        return line, rest[0 if forward else -1], True
    return None


def rank(lines: Sequence[str], word: str, line: int, start: int) -> tuple[int, int]:
    """Which match (from 1, in reading order) starts at `start` of `line`, and how many
    matches of `word` (ignoring case) `lines` hold: what the search bar counts, as in
    "3/12"."""
    needle, before, total = word.lower(), 0, 0
    if not needle:
        return 0, 0
    for index, text in enumerate(lines):
        starts = _starts(text, needle)
        total += len(starts)
        if index < line:
            before += len(starts)
        elif index == line:
            before += sum(1 for at in starts if at < start)
    return before + 1, total


def _starts(text: str, needle: str) -> list[int]:
    """Where `needle` starts in `text` (lower-cased), overlapping matches included."""
    folded, found = text.lower(), []
    at = folded.find(needle)
    while at >= 0:
        found.append(at)
        at = folded.find(needle, at + 1)
    return found


class SearchBar(Input):
    """The word to find in the log; enter finds it, escape closes the bar."""

    DEFAULT_CSS = """
    SearchBar {
        dock: bottom;
        display: none;
        &.-shown { display: block; }
    }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(
            placeholder="find in the log: a word, then enter (n / N: next / previous)",
            id=id,
            disabled=True,  # out of the focus chain until `/` shows it
        )

    def count(self, ordinal: int, total: int) -> None:
        """Say under the word which match is highlighted, of how many ("3/12")."""
        self.border_subtitle = f"{ordinal}/{total}" if total else "no match"

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")

    def show(self) -> None:
        self.disabled = False
        self.add_class("-shown")
        self.focus()

    def hide(self) -> None:
        self.border_subtitle = ""
        self.remove_class("-shown")
        self.disabled = True
