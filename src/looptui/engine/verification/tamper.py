"""The tamper guard: signs in a diff that a failing suite was made to pass by weakening it.

An agent told to make the tests pass can delete, skip or loosen them, or change what runs
them, instead of fixing the code. `inspect_patch` reads an iteration's diff and returns a
`Flag` for each such sign, with the file and line to look at. Adding tests next to a fix is
never flagged, nor is a change to source files alone.

The rules are small functions below; what they know of each language (where tests live, what
skips one, what an assertion looks like) is the table in families.py.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from looptui.engine.models import Flag
from looptui.engine.verification.check_commands import CheckFiles, check_files
from looptui.engine.verification.families import (
    CI_FILES,
    COMMON_SECTIONED,
    FAMILIES,
    TEST_DATA_PATHS,
    Patterns,
    RunnerFamily,
    SectionedConfig,
    matches_any,
)
from looptui.engine.workspace.patch import FilePatch, FileStatus, Line, LineKind, Patch

TEST_FILE_DELETED = "test-file-deleted"
TEST_REMOVED = "test-removed"
TEST_SKIPPED = "test-skipped"
TEST_XFAIL = "test-xfail"
TEST_DESELECTED = "test-deselected"
ASSERTION_REMOVED = "assertion-removed"
ASSERTION_WEAKENED = "assertion-weakened"
TEST_CONFIG = "test-config"
PROTECTED = "protected"
ONLY_TESTS = "only-tests"

_QUOTE_LIMIT = 80  # characters of a line quoted in a message


@dataclass(frozen=True)
class TamperPolicy:
    """What the guard protects, from a loop's options.

    `protected` holds globs of repository-relative paths that must not change at all.
    `allow_test_edits` is for loops whose task is the tests: their content may change freely
    (and a diff of tests alone is expected), while protected files and the test configuration
    are still guarded. `check_commands` are the loop's commands: the files they run count as
    test configuration.
    """

    protected: tuple[str, ...] = ()
    allow_test_edits: bool = False
    check_commands: tuple[str, ...] = ()


class _Kind(enum.Enum):
    TEST = "test"
    CONFIG = "config"
    OTHER = "other"


@dataclass(frozen=True)
class _Context:
    policy: TamperPolicy
    checks: CheckFiles
    added_tests: frozenset[str]  # names of tests defined on added lines anywhere in the patch


def inspect_patch(patch: Patch, policy: TamperPolicy) -> list[Flag]:
    """The flags that `patch` (a parsed `Repository.review_diff`) raises under `policy`."""
    context = _Context(policy, check_files(policy.check_commands), _added_test_names(patch))
    flags: list[Flag] = []
    kinds: list[_Kind] = []
    for file in patch:
        flags += _protected_files(file, policy.protected)
        config_flags = _test_configuration(file, context.checks)
        if config_flags is not None:
            kinds.append(_Kind.CONFIG)
            flags += config_flags
        elif _is_test_file(file):
            kinds.append(_Kind.TEST)
            if not policy.allow_test_edits:
                flags += _test_content(file, context.added_tests)
        else:
            kinds.append(_Kind.OTHER)
    if not policy.allow_test_edits:
        flags += _only_tests(kinds)
    return flags


# -- rules -----------------------------------------------------------------------------------


def _protected_files(file: FilePatch, protected: tuple[str, ...]) -> list[Flag]:
    """Any change to a file that a protected glob matches."""
    for path in _paths(file):
        pattern = matches_any(protected, path)
        if pattern is not None:
            message = f"a protected file changed (it matches {pattern})"
            return [Flag(PROTECTED, file.path, _first_changed(_changed(file)), message)]
    return []


def _test_configuration(file: FilePatch, checks: CheckFiles) -> list[Flag] | None:
    """Flags for a change to what collects or runs the tests; None if `file` is no such file.

    A line that deselects, skips or expects failure gets its own flag; otherwise the file
    gets one flag at its first relevant changed line.
    """
    for path in _paths(file):
        whole = _whole_file_config(path, checks)
        if whole is not None:
            what, markers = whole
            return _config_flags(file, list(_changed(file)), what, markers)
    for path in _paths(file):
        for rule, markers in _sectioned_rules(path, checks):
            lines = _relevant_lines(file, rule, markers)
            if lines:
                return _config_flags(file, lines, "the test configuration", markers or _ALL_MARKERS)
    return None


def _test_content(file: FilePatch, added_tests: frozenset[str]) -> list[Flag]:
    """Tests deleted, removed, skipped, expected to fail or deselected; assertions removed."""
    if file.status is FileStatus.DELETED:
        return [Flag(TEST_FILE_DELETED, file.path, None, f"{file.path} was deleted")]
    if not _is_test_path(file.path):
        message = f"{file.old_path} was moved to {file.path}, where it is not collected as a test"
        return [Flag(TEST_FILE_DELETED, file.path, None, message)]
    family = _family_of(file.path)
    if family is None or file.binary:
        return []
    removed_flags, bodies = _removed_tests(file, family, added_tests)
    return [
        *removed_flags,
        *_added_markers(file, family),
        *_removed_assertions(file, family, bodies),
    ]


def _only_tests(kinds: list[_Kind]) -> list[Flag]:
    """A diff whose every file is a test or test configuration: the code was left as it was."""
    if kinds and all(kind is not _Kind.OTHER for kind in kinds):
        message = "the change touches only tests and their configuration, no other file"
        return [Flag(ONLY_TESTS, "", None, message)]
    return []


# -- test files ------------------------------------------------------------------------------


def _removed_tests(
    file: FilePatch, family: RunnerFamily, added_tests: frozenset[str]
) -> tuple[list[Flag], set[int]]:
    """Flags for tests removed and not added back; and the old line numbers of their bodies,
    whose assertions need no flags of their own."""
    flags: list[Flag] = []
    bodies: set[int] = set()
    for hunk in file.hunks:
        in_body = False
        for line in hunk.lines:
            if line.kind is not LineKind.REMOVED:
                in_body = False
                continue
            assert line.old_number is not None  # a removed line has an old number
            match = family.test_definition.search(line.text)
            if match is not None:
                in_body = match["name"] not in added_tests
                if in_body:
                    message = f"{match['name']} was removed"
                    flags.append(Flag(TEST_REMOVED, file.path, line.old_number, message))
            elif in_body:
                bodies.add(line.old_number)
    return flags, bodies


def _added_markers(file: FilePatch, family: RunnerFamily) -> list[Flag]:
    return list(
        _marker_flags(file, list(_changed(file)), _family_markers((family,), options=False))
    )


def _removed_assertions(file: FilePatch, family: RunnerFamily, bodies: set[int]) -> list[Flag]:
    """Assertions removed and not added back; one swapped for a trivial statement is named so."""
    flags: list[Flag] = []
    available = Counter(_normal(line.text) for line in _changed(file, LineKind.ADDED))
    for hunk in file.hunks:
        trivial = [
            line
            for line in hunk.lines
            if line.kind is LineKind.ADDED and _search(family.trivial_statements, line.text)
        ]
        for line in hunk.lines:
            if line.kind is not LineKind.REMOVED or line.old_number in bodies:
                continue
            expected = _search(family.expected_errors, line.text) is not None
            if not expected and _search(family.assertions, line.text) is None:
                continue
            key = _normal(line.text)
            if available[key] > 0:  # moved or re-indented, not removed
                available[key] -= 1
                continue
            was = _quote(line.text)
            if trivial:
                swap = trivial.pop(0)
                message = f"assertion replaced by {_quote(swap.text)}: {was}"
                flags.append(Flag(ASSERTION_WEAKENED, file.path, swap.new_number, message))
            else:
                what = "expected-error check" if expected else "assertion"
                flags.append(
                    Flag(ASSERTION_REMOVED, file.path, line.old_number, f"{what} removed: {was}")
                )
    return flags


# -- configuration files ---------------------------------------------------------------------


_Markers = tuple[tuple[str, str, Patterns], ...]  # (rule, message, patterns)


def _family_markers(families: Iterable[RunnerFamily], *, options: bool = True) -> _Markers:
    """The markers of `families`; with `options`, those of configuration files too."""
    families = tuple(families)
    deselect = [f.deselect_markers for f in families]
    deselect += [f.option_markers for f in families] if options else []
    return (
        (
            TEST_XFAIL,
            "a test is marked as expected to fail",
            _merge(f.xfail_markers for f in families),
        ),
        (TEST_SKIPPED, "a test is skipped", _merge(f.skip_markers for f in families)),
        (TEST_DESELECTED, "tests are deselected", _merge(deselect)),
    )


def _merge(groups: Iterable[Patterns]) -> Patterns:
    return tuple(pattern for group in groups for pattern in group)


_ALL_MARKERS = _family_markers(FAMILIES)


def _whole_file_config(path: str, checks: CheckFiles) -> tuple[str, _Markers] | None:
    """What a file that configures tests in all its lines is, and the markers to look for."""
    if matches_any(CI_FILES, path) is not None:
        return "a CI file", _ALL_MARKERS
    if path in checks.whole:
        return "a file the check commands run", _ALL_MARKERS
    for family in FAMILIES:
        if matches_any(family.config_files, path) is not None:
            return f"the {family.name} test configuration", _family_markers((family,))
    return None


def _sectioned_rules(path: str, checks: CheckFiles) -> Iterator[tuple[SectionedConfig, _Markers]]:
    """The sectioned rules for `path`, with the markers that make a line of it relevant (a
    family's own; none for files shared by all, where another tool's `-k` may mean anything)."""
    candidates = [(rule, _family_markers((f,))) for f in FAMILIES for rule in f.sectioned_configs]
    candidates += [(rule, ()) for rule in COMMON_SECTIONED]
    for rule, markers in candidates:
        if matches_any((rule.glob,), path) is not None:
            names = checks.parts.get(path)
            yield (rule if not names else _with_check_parts(rule, names)), markers


def _with_check_parts(rule: SectionedConfig, names: frozenset[str]) -> SectionedConfig:
    """`rule` with the Makefile targets or package.json scripts a check command runs."""
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    if rule.header is not None and rule.sections is not None:
        sections = re.compile(f"(?:{rule.sections.pattern})|^(?:{alternatives})$")
        return dataclasses.replace(rule, sections=sections)
    lines = re.compile(f'(?:{rule.lines.pattern})|"(?:{alternatives})"\\s*:')
    return dataclasses.replace(rule, lines=lines)


def _relevant_lines(file: FilePatch, rule: SectionedConfig, markers: _Markers) -> list[Line]:
    """The changed lines of a sectioned config file that configure tests."""
    relevant: list[Line] = []
    for hunk in file.hunks:
        section = _header(rule, hunk.section)
        for line in hunk.lines:
            section = _header(rule, line.text) or section
            if line.kind is LineKind.CONTEXT:
                continue
            if section is not None and rule.sections is not None:
                hit = rule.sections.search(section) is not None
            else:
                hit = rule.lines.search(line.text) is not None
            if hit or any(_search(patterns, line.text) for _, _, patterns in markers):
                relevant.append(line)
    return relevant


def _header(rule: SectionedConfig, text: str) -> str | None:
    if rule.header is None:
        return None
    match = rule.header.match(text)
    return match[1] if match else None


def _config_flags(file: FilePatch, lines: list[Line], what: str, markers: _Markers) -> list[Flag]:
    flags = list(_marker_flags(file, lines, markers))
    if flags:
        return flags
    if file.status is FileStatus.DELETED:
        return [Flag(TEST_CONFIG, file.path, None, f"{what} was deleted: {file.path}")]
    first = next(iter(lines), None)
    message = f"{what} changed" + (
        f": {_quote(first.text)}" if first and first.text.strip() else ""
    )
    return [Flag(TEST_CONFIG, file.path, _first_changed(lines), message)]


# -- helpers ---------------------------------------------------------------------------------


def _marker_flags(file: FilePatch, lines: list[Line], markers: _Markers) -> Iterator[Flag]:
    """A flag for each added line among `lines` that holds a marker and was not there before."""
    before = Counter(_normal(line.text) for line in lines if line.kind is LineKind.REMOVED)
    for line in lines:
        if line.kind is not LineKind.ADDED:
            continue
        key = _normal(line.text)
        if before[key] > 0:
            before[key] -= 1
            continue
        for rule, message, patterns in markers:
            match = _search(patterns, line.text)
            if match is not None:
                shown = match["marker"] if "marker" in match.re.groupindex else match[0]
                shown = shown.strip().rstrip("(")
                yield Flag(rule, file.path, line.new_number, f"{message}: {shown}")
                break


def _added_test_names(patch: Patch) -> frozenset[str]:
    names: set[str] = set()
    for file in patch:
        family = _family_of(file.path)
        if family is None or not _is_test_path(file.path):
            continue
        for line in _changed(file, LineKind.ADDED):
            match = family.test_definition.search(line.text)
            if match is not None:
                names.add(match["name"])
    return frozenset(names)


def _is_test_file(file: FilePatch) -> bool:
    return any(_is_test_path(path) for path in _paths(file))


def _is_test_path(path: str) -> bool:
    family = _family_of(path)
    if family is not None and matches_any(family.test_paths, path) is not None:
        return True
    return matches_any(TEST_DATA_PATHS, path) is not None


def _family_of(path: str) -> RunnerFamily | None:
    return next((f for f in FAMILIES if path.endswith(f.extensions)), None)


def _paths(file: FilePatch) -> list[str]:
    return list(dict.fromkeys(p for p in (file.new_path, file.old_path) if p is not None))


def _changed(file: FilePatch, kind: LineKind | None = None) -> Iterator[Line]:
    for hunk in file.hunks:
        for line in hunk.lines:
            if line.kind is not LineKind.CONTEXT and (kind is None or line.kind is kind):
                yield line


def _first_changed(lines: Iterable[Line]) -> int | None:
    for line in lines:
        return line.new_number if line.kind is LineKind.ADDED else line.old_number
    return None


def _search(patterns: Patterns, text: str) -> re.Match[str] | None:
    return next((m for m in (p.search(text) for p in patterns) if m is not None), None)


def _normal(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…"
