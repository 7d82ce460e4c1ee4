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
        return Spec(files[head], _unit(files[head], tail))
    path, _, hunk = head.rpartition(":")
    if path in files:
        key = _unit(files[path], hunk)
        return Spec(files[path], key, _lines(files[path], key, tail))
    known = ", ".join(sorted(file.path for file in patch.files)) or "none"
    raise BadSpec(f"the run's diff has no file {text!r}; its files: {known}")


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


def _unit(file: FilePatch, text: str) -> HunkKey:
    keys = file.keys
    if text.isdigit() and 1 <= int(text) <= len(keys):
        return keys[int(text) - 1]
    which = text if text.isdigit() else repr(text)
    raise BadSpec(f"{file.path} has {_numbered(len(keys), 'hunk')}; there is no hunk {which}")


def _lines(file: FilePatch, key: HunkKey, text: str) -> frozenset[int]:
    hunk_name = f"{file.path} hunk {file.keys.index(key) + 1}"
    hunk = next((h for h in file.hunks if h.key == key and file.split), None)
    if hunk is None:
        whole = key == file.file_key
        what = f"{file.path} is taken whole" if whole else f"{hunk_name} is a rename or mode change"
        raise BadSpec(f"{what}; it has no lines to decide")
    chosen: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise BadSpec(
                f"lines of {hunk_name} are numbers and ranges such as 3,5-7; {part!r} is neither"
            )
        if last and int(last) < int(first):
            raise BadSpec(
                f"lines of {hunk_name}: the range {part} runs backwards; write {last}-{first}"
            )
        chosen.update(range(int(first), int(last or first) + 1))
    for position in sorted(chosen):
        if not 1 <= position <= len(hunk.lines):
            lines = _numbered(len(hunk.lines), "line")
            raise BadSpec(f"{hunk_name} has {lines}; there is no line {position}")
        if position - 1 not in hunk.changed:
            raise BadSpec(
                f"{hunk_name} line {position} is context, neither added nor removed; "
                "only changed lines can be decided"
            )
    return frozenset(position - 1 for position in chosen)


def _numbered(count: int, noun: str) -> str:
    """How many `noun`s there are and their numbers from 1: "1 hunk (1)", "3 hunks (1-3)"."""
    if count == 0:
        return f"no {noun}s"
    numbers = "1" if count == 1 else f"1-{count}"
    return f"{count} {noun}{'' if count == 1 else 's'} ({numbers})"
