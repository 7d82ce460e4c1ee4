"""A `git diff` as a Patch of FilePatches, Hunks and Lines: the model that review works on.

The review flow: `parse_patch` (git_diff.py) turns `Repository.review_diff` output into this
model, a `Selection` (selection.py) records the user's accept/reject decision per key, and
`build_patch` (git_diff.py) turns the chosen keys back into text that `git apply` takes.

A key (`HunkKey`) names one reviewable unit. A plain modification has one key per hunk. A file
that can only be taken whole (binary, added, deleted, copied, or with no hunks at all) has a
single key covering everything. A rename or mode change that also changes content has a key
for the rename or mode change itself plus one per hunk, so the content can be taken without
the rename and the other way round. A type change (git shows a deletion and an addition of
the same path) is one unit: neither half applies without the other.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace

NO_NEWLINE_MARKER = "\\ No newline at end of file"


class LineKind(enum.Enum):
    """What a hunk line does; the value is its prefix character in a patch."""

    CONTEXT = " "
    ADDED = "+"
    REMOVED = "-"


class FileStatus(enum.Enum):
    ADDED = "added"
    DELETED = "deleted"
    MODIFIED = "modified"
    RENAMED = "renamed"
    COPIED = "copied"
    MODE_CHANGED = "mode-changed"


@dataclass(frozen=True, order=True)
class HunkKey:
    """One reviewable unit: `index` counts the units of `path` in diff order, from 0."""

    path: str
    index: int


@dataclass(frozen=True)
class Line:
    """One line of a hunk: `text` has neither the prefix nor the newline (a CR stays)."""

    kind: LineKind
    text: str
    old_number: int | None  # None for an added line
    new_number: int | None  # None for a removed line
    missing_newline: bool = False  # the file ends here without a newline

    def render(self) -> list[str]:
        """The line as a patch holds it, with the no-newline marker when it applies."""
        lines = [self.kind.value + self.text]
        if self.missing_newline:
            lines.append(NO_NEWLINE_MARKER)
        return lines


@dataclass(frozen=True)
class Hunk:
    """One `@@` section. `key` is the unit whose decision covers it (its file's, if whole)."""

    key: HunkKey
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str  # the heading git prints after the second @@, often the enclosing function
    lines: tuple[Line, ...]

    @property
    def added(self) -> int:
        return sum(line.kind is LineKind.ADDED for line in self.lines)

    @property
    def removed(self) -> int:
        return sum(line.kind is LineKind.REMOVED for line in self.lines)

    @property
    def header(self) -> str:
        return _hunk_header(self, self.old_start, self.new_start)

    @property
    def changed(self) -> tuple[int, ...]:
        """The indexes (into `lines`) of the added and removed lines: those a reviewer can
        take or leave one by one."""
        return tuple(i for i, line in enumerate(self.lines) if line.kind is not LineKind.CONTEXT)

    def only(self, chosen: Collection[int], *, reverse: bool = False) -> Hunk | None:
        """This hunk with only the changed lines at `chosen` (indexes into `lines`) changing;
        None when none of them is a change.

        Forward, the hunk applies to the old side: an added line not chosen is left out and a
        removed line not chosen stays, as context. With `reverse` it is meant for `git apply
        -R` on the new side (to take the chosen lines back out): an added line not chosen
        stays, as context, and a removed line not chosen is gone already, so left out. The
        start of the side the hunk does not apply to is the caller's to shift (`render`).
        """
        kept = (LineKind.REMOVED, LineKind.ADDED)[reverse]  # the kind that stays as context
        body: list[Line] = []
        for index, line in enumerate(self.lines):
            if line.kind is LineKind.CONTEXT or index in chosen:
                body.append(line)
            elif line.kind is kept:
                body.append(replace(line, kind=LineKind.CONTEXT))
        if all(line.kind is LineKind.CONTEXT for line in body):
            return None
        old_count = sum(line.kind is not LineKind.ADDED for line in body)
        new_count = sum(line.kind is not LineKind.REMOVED for line in body)
        return replace(
            self,
            old_start=_start(self.old_start, self.old_count, old_count),
            old_count=old_count,
            new_start=_start(self.new_start, self.new_count, new_count),
            new_count=new_count,
            lines=tuple(body),
        )

    def render(self, old_start: int | None = None, new_start: int | None = None) -> list[str]:
        """The hunk's patch lines, its header optionally renumbered."""
        header = _hunk_header(
            self,
            self.old_start if old_start is None else old_start,
            self.new_start if new_start is None else new_start,
        )
        return [header, *(text for line in self.lines for text in line.render())]


@dataclass(frozen=True)
class FilePatch:
    """The changes to one file; the raw header lines are kept to rebuild a valid patch."""

    old_path: str | None  # None when the file is added
    new_path: str | None  # None when the file is deleted
    status: FileStatus
    binary: bool
    header: tuple[str, ...]  # "diff --git ..." and the extended header lines, verbatim
    labels: tuple[str, ...]  # the "--- ..." and "+++ ..." lines, verbatim; empty if none
    binary_patch: tuple[str, ...]  # the "GIT binary patch" block, verbatim; empty if none
    hunks: tuple[Hunk, ...]
    # The unit for what the header changes by itself (a rename, a mode change) or for the
    # whole file when it is not split into hunks; None for a plain modification.
    file_key: HunkKey | None
    old_mode: str | None = None
    new_mode: str | None = None
    similarity: int | None = None  # percent, for renames and copies

    @property
    def path(self) -> str:
        """The path to show: the new one, or the old one for a deletion."""
        path = self.new_path if self.new_path is not None else self.old_path
        assert path is not None  # the parser never builds a file without either
        return path

    @property
    def split(self) -> bool:
        """True when hunks can be decided one by one."""
        return bool(self.hunks) and self.hunks[0].key != self.file_key

    @property
    def keys(self) -> tuple[HunkKey, ...]:
        keys = [] if self.file_key is None else [self.file_key]
        keys += [hunk.key for hunk in self.hunks if hunk.key != self.file_key]
        return tuple(keys)

    @property
    def added(self) -> int:
        return sum(hunk.added for hunk in self.hunks)

    @property
    def removed(self) -> int:
        return sum(hunk.removed for hunk in self.hunks)

    def render(self) -> list[str]:
        """The file's whole patch, as parsed."""
        lines = [*self.header, *self.labels, *self.binary_patch]
        for hunk in self.hunks:
            lines += hunk.render()
        return lines


@dataclass(frozen=True)
class Patch:
    """A parsed `git diff`: its files in diff order."""

    files: tuple[FilePatch, ...] = ()

    def __iter__(self) -> Iterator[FilePatch]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def keys(self) -> tuple[HunkKey, ...]:
        """Every reviewable unit, in diff order."""
        return tuple(dict.fromkeys(key for file in self.files for key in file.keys))

    @property
    def added(self) -> int:
        return sum(file.added for file in self.files)

    @property
    def removed(self) -> int:
        return sum(file.removed for file in self.files)

    def hunks(self) -> Iterator[tuple[FilePatch, Hunk]]:
        for file in self.files:
            for hunk in file.hunks:
                yield file, hunk

    def files_of(self, key: HunkKey) -> tuple[FilePatch, ...]:
        """The file (two for a type change) that `key` belongs to."""
        files = tuple(file for file in self.files if key in file.keys)
        if not files:
            raise KeyError(key)
        return files


def _start(start: int, count: int, now: int) -> int:
    """A side's start once its line count is `now`: git numbers an empty side by the line
    before it, a side with lines by its first."""
    if count == 0 and now > 0:
        return start + 1
    if count > 0 and now == 0:
        return start - 1
    return start


def _hunk_header(hunk: Hunk, old_start: int, new_start: int) -> str:
    def span(start: int, count: int) -> str:
        return str(start) if count == 1 else f"{start},{count}"

    old, new = span(old_start, hunk.old_count), span(new_start, hunk.new_count)
    return f"@@ -{old} +{new} @@" + (f" {hunk.section}" if hunk.section else "")
