"""Where a diff line stands: the test function whose body holds it, if any.

A test file's rules ask this of each line (was it removed from a test that stays? added to a
new one?), on the old side of the file for a removed line and the new side for the others.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from looptui.engine.verification.diff_lines import changed, normal, search
from looptui.engine.verification.families import RunnerFamily
from looptui.engine.workspace.patch import FilePatch, Line, LineKind


@dataclass(frozen=True)
class Scope:
    """The test function a line stands in."""

    name: str
    indent: int  # of its definition: a line indented no deeper ends its body
    existing: bool  # it was in the file before the change and still is
    nested: int | None = None  # the indent of a function defined inside it, while in that one

    def inner(self, text: str) -> bool:
        """Whether `text` stands in a function defined inside the test (a `return` there is
        no early exit)."""
        return self.nested is not None and _indent(text) > self.nested


def scoped_lines(file: FilePatch, family: RunnerFamily) -> Iterator[tuple[Line, Scope | None]]:
    """Each line of the hunks with the test whose body holds it (on the old side for a removed
    line, the new side for the others), or None: outside any test, or a test's definition.

    A body ends at the next line indented no deeper than its definition. A hunk starts in the
    test git names in its heading, when git names one.
    """
    defined: dict[LineKind, set[str]] = {LineKind.ADDED: set(), LineKind.REMOVED: set()}
    for line in changed(file):
        match = family.test_definition.search(line.text)
        if match is not None:
            defined[line.kind].add(match["name"])
    for hunk in file.hunks:
        heading = family.test_definition.search(hunk.section)
        start = Scope(heading["name"], _indent(hunk.section), True) if heading else None
        old, new = start, start
        for line in hunk.lines:
            match = family.test_definition.search(line.text)
            if match is not None:
                name, indent = match["name"], _indent(line.text)
                if line.kind is LineKind.CONTEXT:
                    old = new = Scope(name, indent, True)
                elif line.kind is LineKind.REMOVED:
                    old = Scope(name, indent, name in defined[LineKind.ADDED])
                else:
                    new = Scope(name, indent, name in defined[LineKind.REMOVED])
                yield line, None
                continue
            if line.kind is not LineKind.ADDED:
                old = _next_scope(family, line.text, old)
            if line.kind is not LineKind.REMOVED:
                new = _next_scope(family, line.text, new)
            yield line, old if line.kind is LineKind.REMOVED else new


def _next_scope(family: RunnerFamily, text: str, scope: Scope | None) -> Scope | None:
    """`scope` as it stands at `text`: ended, or entering or leaving a nested function."""
    if scope is None or is_blank(family, text):
        return scope
    if _ends_body(family, text, scope):
        return None
    if scope.nested is not None and _indent(text) <= scope.nested:
        scope = dataclasses.replace(scope, nested=None)
    if scope.nested is None and search(family.nested_definitions, text) is not None:
        scope = dataclasses.replace(scope, nested=_indent(text))
    return scope


def _ends_body(family: RunnerFamily, text: str, scope: Scope | None) -> bool:
    if scope is None or is_blank(family, text) or text.lstrip().startswith(")"):
        return False  # a signature's closing parenthesis is no new statement
    return _indent(text) <= scope.indent


def added_code(
    file: FilePatch, scoped: list[tuple[Line, Scope | None]]
) -> Iterator[tuple[Line, Scope | None]]:
    """The added lines, with their test, that were not in the file before (re-indented)."""
    before = Counter(normal(line.text) for line in changed(file, LineKind.REMOVED))
    for line, scope in scoped:
        if line.kind is not LineKind.ADDED:
            continue
        key = normal(line.text)
        if before[key] > 0:
            before[key] -= 1
            continue
        yield line, scope


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def is_blank(family: RunnerFamily, text: str) -> bool:
    """A line that is empty or only a comment: changing it changes nothing a test checks."""
    return not text.strip() or (
        family.comment is not None and family.comment.match(text) is not None
    )
