"""Scripted review: `FILE[:HUNK][:LINES]` names what `looptui review --accept/--reject`
decides, and is applied to a `Selection` here.

HUNK counts the file's units from 1 as `looptui review RUN` lists them (a rename or mode
change by itself is a unit too). LINES are positions in the hunk's body from 1, as `looptui
review RUN --show` numbers them (context lines count but cannot be decided): "3", "3,5-7".
A file name may hold ":" itself: the longest prefix that names a file of the diff wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from looptui.engine.errors import LooptuiError
from looptui.engine.workspace import Decision, FilePatch, HunkKey, Patch, Selection


class BadSpec(LooptuiError):
    """A FILE[:HUNK][:LINES] that names nothing in the run's diff."""


@dataclass(frozen=True)
class Spec:
    """What one `--accept`/`--reject` names: a whole file, one unit, or lines of a hunk."""

    file: FilePatch
    key: HunkKey | None = None  # None: the whole file
    lines: frozenset[int] = frozenset()  # indexes into the hunk's lines; empty: the unit

    @property
    def narrowness(self) -> int:
        """0 for a file, 1 for a unit, 2 for lines: the narrower decision is applied last."""
        return 0 if self.key is None else 2 if self.lines else 1


def parse_spec(patch: Patch, text: str) -> Spec:
    """The file, unit and lines `text` names in `patch`; BadSpec (one line) when none."""
    files = {file.path: file for file in patch.files}
    files.update({f.old_path: f for f in patch.files if f.old_path and f.old_path not in files})
    if text in files:
        return Spec(files[text])
    head, _, tail = text.rpartition(":")
    if head in files:
        return Spec(files[head], _unit(files[head], tail, text))
    path, _, hunk = head.rpartition(":")
    if path in files:
        key = _unit(files[path], hunk, text)
        return Spec(files[path], key, _lines(patch, key, tail, text))
    known = ", ".join(sorted(file.path for file in patch.files)) or "none"
    raise BadSpec(f"{text!r} names no file of the run's diff (its files: {known})")


def apply_spec(selection: Selection, spec: Spec, decision: Decision) -> None:
    """Decide what `spec` names: the file, the unit, or (lines) those lines of the hunk."""
    if spec.key is None:
        selection.decide_file(spec.file, decision)
    elif not spec.lines:
        selection.decide(spec.key, decision)
    else:
        rejected = selection.rejected_lines(spec.key)
        if selection.decision(spec.key) is Decision.UNDECIDED:
            rejected = frozenset()  # deciding lines accepts the rest of the hunk
        if decision is Decision.REJECTED:
            selection.decide_lines(spec.key, rejected | spec.lines)
        else:
            selection.decide_lines(spec.key, rejected - spec.lines)


def _unit(file: FilePatch, text: str, spec: str) -> HunkKey:
    keys = file.keys
    if not text.isdigit() or not 1 <= int(text) <= len(keys):
        count = f"{len(keys)} unit{'s' if len(keys) != 1 else ''}"
        raise BadSpec(f"{spec!r}: {file.path} has no hunk {text!r} (it has {count}, from 1)")
    return keys[int(text) - 1]


def _lines(patch: Patch, key: HunkKey, text: str, spec: str) -> frozenset[int]:
    hunk = next((h for f in patch.files for h in f.hunks if h.key == key and f.split), None)
    if hunk is None:
        raise BadSpec(f"{spec!r}: that unit is taken whole; it has no lines to decide")
    chosen: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise BadSpec(f"{spec!r}: lines are numbers and ranges such as 3,5-7, not {part!r}")
        chosen.update(range(int(first), int(last or first) + 1))
    for position in sorted(chosen):
        if not 1 <= position <= len(hunk.lines):
            raise BadSpec(f"{spec!r}: the hunk has {len(hunk.lines)} lines, not {position}")
        if position - 1 not in hunk.changed:
            raise BadSpec(f"{spec!r}: line {position} is context, neither added nor removed")
    return frozenset(position - 1 for position in chosen)
