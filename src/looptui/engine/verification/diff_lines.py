"""Small readers of a parsed diff that the tamper guard's rules share: its changed lines, and
their text compared, searched and quoted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from looptui.engine.verification.families import Patterns
from looptui.engine.workspace.patch import FilePatch, Line, LineKind

_QUOTE_LIMIT = 80  # characters of a line quoted in a message


def changed(file: FilePatch, kind: LineKind | None = None) -> Iterator[Line]:
    """The added and removed lines of `file`, or only those of `kind`."""
    for hunk in file.hunks:
        for line in hunk.lines:
            if line.kind is not LineKind.CONTEXT and (kind is None or line.kind is kind):
                yield line


def first_changed(lines: Iterable[Line]) -> int | None:
    """The line number to point a flag at: the first of `lines`, on its own side."""
    for line in lines:
        return line.new_number if line.kind is LineKind.ADDED else line.old_number
    return None


def search(patterns: Patterns, text: str) -> re.Match[str] | None:
    """The first match in `text` of any of `patterns`."""
    return next((m for m in (p.search(text) for p in patterns) if m is not None), None)


def normal(text: str) -> str:
    """`text` with its whitespace normalized: a line moved or re-indented compares equal."""
    return " ".join(text.split())


def quote(text: str) -> str:
    """`text` stripped and cut short to quote in a message."""
    text = text.strip()
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…"
