"""git's diff text in and out: `parse_patch` reads `git diff` output into the Patch model
(patch.py), and `build_patch` writes chosen units of it back as text that `git apply` takes.
Names are quoted and unquoted as git does. Nothing here runs git.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from looptui.engine.workspace.patch import (
    FilePatch,
    FileStatus,
    Hunk,
    HunkKey,
    Line,
    LineKind,
    Patch,
)

_HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)")
_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 34: '"', 92: "\\"}
_UNESCAPES = {letter: code for code, letter in _ESCAPES.items()}


class PatchParseError(ValueError):
    """The text is not `git diff` output this parser understands."""


# -- parsing ---------------------------------------------------------------------------------


def parse_patch(text: str) -> Patch:
    """Parse `git diff` output (no colour, default a/ b/ prefixes, any number of files).

    Hunk bodies are read by their line counts, so content that looks like a file header
    ("--- x", "diff --git ...") is never mistaken for one. Anything before the first
    "diff --git" line is ignored.
    """
    # Only "\n" ends a line: CR, form feed and the like are file content.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    position = 0
    while position < len(lines) and not lines[position].startswith("diff --git "):
        position += 1
    files: list[FilePatch] = []
    units: dict[str, int] = {}
    while position < len(lines):
        file, position = _parse_file(lines, position, files[-1] if files else None, units)
        files.append(file)
    return Patch(tuple(files))


def _parse_file(
    lines: list[str], position: int, previous: FilePatch | None, units: dict[str, int]
) -> tuple[FilePatch, int]:
    header = [lines[position]]
    labels: tuple[str, ...] = ()
    binary_patch: list[str] = []
    position += 1
    while position < len(lines):
        line = lines[position]
        if line.startswith(("diff --git ", "@@ ")):
            break
        following = lines[position + 1] if position + 1 < len(lines) else ""
        if line.startswith("--- ") and following.startswith("+++ "):
            labels = (line, following)
            position += 2
            break
        if line == "GIT binary patch":
            while position < len(lines) and not lines[position].startswith("diff --git "):
                binary_patch.append(lines[position])
                position += 1
            break
        header.append(line)
        position += 1

    raw_hunks: list[tuple[tuple[int, int, int, int, str], tuple[Line, ...]]] = []
    while position < len(lines) and lines[position].startswith("@@ "):
        raw_hunk, position = _parse_hunk(lines, position)
        raw_hunks.append(raw_hunk)
    if position < len(lines) and not lines[position].startswith("diff --git "):
        raise PatchParseError(f"line {position + 1}: unexpected {lines[position]!r}")

    meta = _Header.read(header, labels)
    binary = bool(binary_patch) or any(line.startswith("Binary files ") for line in header)
    path = meta.new_path if meta.new_path is not None else meta.old_path
    if path is None:
        raise PatchParseError(f"no file name in {header[0]!r}")

    def next_key() -> HunkKey:
        units[path] = units.get(path, -1) + 1
        return HunkKey(path, units[path])

    splittable = not binary and meta.status in (
        FileStatus.MODIFIED,
        FileStatus.RENAMED,
        FileStatus.MODE_CHANGED,
    )
    file_key: HunkKey | None = None
    if (
        previous is not None
        and previous.status is FileStatus.DELETED
        and meta.status is FileStatus.ADDED
        and previous.path == path
    ):
        file_key = previous.file_key  # a type change: one unit with the deletion before it
    elif not (splittable and meta.status is FileStatus.MODIFIED and raw_hunks):
        file_key = next_key()

    def hunk_key() -> HunkKey:
        if splittable:
            return next_key()
        assert file_key is not None  # a file taken whole always has its key
        return file_key

    hunks = tuple(Hunk(hunk_key(), *numbers, body) for numbers, body in raw_hunks)
    file = FilePatch(
        old_path=meta.old_path,
        new_path=meta.new_path,
        status=meta.status,
        binary=binary,
        header=tuple(header),
        labels=labels,
        binary_patch=tuple(binary_patch),
        hunks=hunks,
        file_key=file_key,
        old_mode=meta.old_mode,
        new_mode=meta.new_mode,
        similarity=meta.similarity,
    )
    return file, position


def _parse_hunk(
    lines: list[str], position: int
) -> tuple[tuple[tuple[int, int, int, int, str], tuple[Line, ...]], int]:
    match = _HUNK_HEADER.fullmatch(lines[position])
    if match is None:
        raise PatchParseError(f"line {position + 1}: bad hunk header {lines[position]!r}")
    old_start, new_start = int(match[1]), int(match[3])
    old_count = 1 if match[2] is None else int(match[2])
    new_count = 1 if match[4] is None else int(match[4])
    old_left, new_left = old_count, new_count
    old_number, new_number = old_start, new_start
    body: list[Line] = []
    position += 1
    while (
        old_left > 0 or new_left > 0 or (position < len(lines) and lines[position].startswith("\\"))
    ):
        if position >= len(lines):
            raise PatchParseError(f"the hunk {match[0]!r} ends early")
        line = lines[position]
        tag, text = line[:1], line[1:]
        if tag == "\\":
            if not body:
                raise PatchParseError(f"line {position + 1}: {line!r} follows no line")
            body[-1] = replace(body[-1], missing_newline=True)
        elif tag in (" ", "") and old_left > 0 and new_left > 0:
            # diff.suppressBlankEmpty prints an empty context line without its space
            body.append(Line(LineKind.CONTEXT, text, old_number, new_number))
            old_number, new_number = old_number + 1, new_number + 1
            old_left, new_left = old_left - 1, new_left - 1
        elif tag == "-" and old_left > 0:
            body.append(Line(LineKind.REMOVED, text, old_number, None))
            old_number, old_left = old_number + 1, old_left - 1
        elif tag == "+" and new_left > 0:
            body.append(Line(LineKind.ADDED, text, None, new_number))
            new_number, new_left = new_number + 1, new_left - 1
        else:
            raise PatchParseError(f"line {position + 1}: {line!r} does not fit {match[0]!r}")
        position += 1
    numbers = (old_start, old_count, new_start, new_count, match[5])
    return (numbers, tuple(body)), position


@dataclass
class _Header:
    """What the extended header lines of one file say."""

    old_path: str | None = None
    new_path: str | None = None
    status: FileStatus = FileStatus.MODIFIED
    old_mode: str | None = None
    new_mode: str | None = None
    similarity: int | None = None
    named: set[str] = field(default_factory=set)  # which paths the header named outright

    @classmethod
    def read(cls, header: list[str], labels: tuple[str, ...]) -> _Header:
        meta = cls()
        meta.old_path, meta.new_path = _git_header_paths(header[0].removeprefix("diff --git "))
        for line in header[1:]:
            meta._read_line(line)
        if labels and "old" not in meta.named:
            meta.old_path = _label_path(labels[0][4:], "a/")
        if labels and "new" not in meta.named:
            meta.new_path = _label_path(labels[1][4:], "b/")
        if meta.status is FileStatus.ADDED:
            meta.old_path = None
        elif meta.status is FileStatus.DELETED:
            meta.new_path = None
        elif meta.status is FileStatus.MODIFIED and meta.old_mode != meta.new_mode:
            meta.status = FileStatus.MODE_CHANGED
        return meta

    def _read_line(self, line: str) -> None:
        word, _, value = line.partition(" ")
        if line.startswith("old mode "):
            self.old_mode = line.removeprefix("old mode ")
        elif line.startswith("new mode "):
            self.new_mode = line.removeprefix("new mode ")
        elif line.startswith("new file mode "):
            self.status, self.new_mode = FileStatus.ADDED, line.removeprefix("new file mode ")
        elif line.startswith("deleted file mode "):
            self.status = FileStatus.DELETED
            self.old_mode = line.removeprefix("deleted file mode ")
        elif line.startswith(("rename from ", "copy from ")):
            self.old_path = _unquote_whole(line.split(" ", 2)[2])
            self.named.add("old")
            self.status = FileStatus.RENAMED if word == "rename" else FileStatus.COPIED
        elif line.startswith(("rename to ", "copy to ")):
            self.new_path = _unquote_whole(line.split(" ", 2)[2])
            self.named.add("new")
        elif word == "index" and value.count(" ") == 1 and self.old_mode is None:
            self.old_mode = self.new_mode = value.split(" ")[1]  # "index a..b 100644"
        elif line.startswith(("similarity index ", "dissimilarity index ")):
            digits = line.rsplit(" ", 1)[1].rstrip("%")
            self.similarity = int(digits) if digits.isdigit() else None


def _git_header_paths(names: str) -> tuple[str | None, str | None]:
    """The two names of a "diff --git" line, which is ambiguous when they hold spaces."""
    if names.startswith('"'):
        first, end = _unquote(names, 0)
        second = names[end + 1 :]
        return _strip_prefix(first, "a/"), _strip_prefix(_unquote_whole(second), "b/")
    if names.endswith('"') and ' "' in names:  # an unquoted name never holds a quote
        first, _, second = names.partition(' "')
        return _strip_prefix(first, "a/"), _strip_prefix(_unquote_whole('"' + second), "b/")
    # Both unquoted: git itself assumes the same name twice, as it is unless renamed (and
    # then the "rename from/to" lines name both).
    half = (len(names) - 1) // 2
    first, second = names[:half], names[half + 1 :]
    if first[2:] != second[2:]:
        first, _, second = names.partition(" b/")
        second = "b/" + second
    return _strip_prefix(first, "a/"), _strip_prefix(second, "b/")


def _label_path(label: str, prefix: str) -> str | None:
    if label.startswith('"'):
        return _strip_prefix(_unquote(label, 0)[0], prefix)
    name = label.split("\t", 1)[0]  # git adds a tab after a name with a space in it
    return None if name == "/dev/null" else _strip_prefix(name, prefix)


def _strip_prefix(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


def _unquote_whole(text: str) -> str:
    return _unquote(text, 0)[0] if text.startswith('"') else text


def _unquote(text: str, start: int) -> tuple[str, int]:
    """The C-quoted name opening at `text[start]`, and the index past its closing quote."""
    raw = bytearray()
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return raw.decode("utf-8", "surrogateescape"), index + 1
        if char == "\\" and index + 1 < len(text):
            escaped = text[index + 1]
            if escaped in "01234567":
                raw.append(int(text[index + 1 : index + 4], 8) & 0xFF)
                index += 4
                continue
            raw.append(_UNESCAPES.get(escaped, ord(escaped)))
            index += 2
            continue
        raw += char.encode("utf-8", "surrogateescape")
        index += 1
    raise PatchParseError(f"unterminated quoted name in {text!r}")


def _quote(name: str) -> str:
    """`name` as git writes it in a patch: C-quoted when it holds special or non-ASCII bytes."""
    raw = name.encode("utf-8", "surrogateescape")
    if not any(byte < 0x20 or byte >= 0x7F or byte in (34, 92) for byte in raw):
        return name
    quoted = "".join(
        "\\" + _ESCAPES[byte]
        if byte in _ESCAPES
        else f"\\{byte:03o}"
        if byte < 0x20 or byte >= 0x7F
        else chr(byte)
        for byte in raw
    )
    return f'"{quoted}"'


# -- building partial patches ----------------------------------------------------------------


def build_patch(
    patch: Patch,
    keys: Iterable[HunkKey],
    *,
    reverse: bool = False,
    lines: Mapping[HunkKey, Collection[int]] | None = None,
) -> str:
    """A patch holding only the units in `keys`, for `git apply`; "" when `keys` is empty.

    By default it applies forward to the diff's old side (base + the chosen units). With
    `reverse=True` it is meant for `git apply -R` on the diff's new side (to take the chosen
    units back out, as `Repository.revert_hunks` does): the line numbers then fit the new
    side, and a hunk of a renamed file whose rename is not chosen names the new path.

    `lines` narrows a chosen hunk to some of its changed lines (indexes into `Hunk.lines`,
    see `Hunk.only`): only those change, forward or taken back out.
    """
    chosen = set(keys)
    parts = dict(lines or {})
    unknown = chosen.union(parts).difference(patch.keys)
    if unknown:
        raise KeyError(f"not in this patch: {sorted(unknown)}")
    text: list[str] = []
    for file in patch.files:
        text += _file_lines(file, chosen, parts, reverse)
    return "".join(line + "\n" for line in text)


def _file_lines(
    file: FilePatch,
    chosen: set[HunkKey],
    parts: Mapping[HunkKey, Collection[int]],
    reverse: bool,
) -> list[str]:
    if not file.split:
        return file.render() if file.file_key in chosen else []
    # Each hunk as it goes into the patch: whole, narrowed to some of its lines, or left out.
    taken: dict[int, Hunk] = {}
    for position, hunk in enumerate(file.hunks):
        if hunk.key not in chosen:
            continue
        narrowed = hunk.only(parts[hunk.key], reverse=reverse) if hunk.key in parts else hunk
        if narrowed is not None:
            taken[position] = narrowed
    whole = len(taken) == len(file.hunks) and all(h is file.hunks[p] for p, h in taken.items())
    if file.file_key is None or file.file_key in chosen:
        if not taken and file.file_key is None:
            return []
        header = list(file.header)
        if not whole:  # its postimage id no longer holds
            header = [line for line in header if not line.startswith("index ")]
        if not taken:
            return header
        lines = header + list(file.labels)
    elif taken:
        # The content without the rename or mode change: a plain change of the one path
        # the patch meets on its side.
        path = file.new_path if reverse else file.old_path
        assert path is not None
        old, new = _quote("a/" + path), _quote("b/" + path)
        tab = "\t" if " " in path and not old.startswith('"') else ""
        lines = [f"diff --git {old} {new}", f"--- {old}{tab}", f"+++ {new}{tab}"]
    else:
        return []
    # What is left out shifts the lines after it on the side the patch does not apply to.
    shift = 0
    for position, hunk in enumerate(file.hunks):
        part = taken.get(position)
        if reverse and part is not None:
            lines += part.render(old_start=part.old_start + shift)
        elif part is not None:
            lines += part.render(new_start=part.new_start - shift)
        kept = 0 if part is None else part.new_count - part.old_count
        shift += hunk.new_count - hunk.old_count - kept
    return lines
