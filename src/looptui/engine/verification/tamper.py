"""The tamper guard: signs in a diff that a failing suite was made to pass by weakening it.

An agent told to make the tests pass can delete, skip or loosen them, or change what runs
them, instead of fixing the code. `inspect_patch` reads an iteration's diff and returns a
`Flag` for each such sign, with the file and line to look at. Adding tests next to a fix is
never flagged, nor is a change to source files alone.

The rules are small functions below; what they know of each language (where tests live, what
skips one, what an assertion looks like) is the table in families.py. Where a line stands
in a test is test_scopes.py; the rules for configuration files are config_rules.py, those for
the runner itself (a module shadowing it, source code reaching into it) runner_rules.py.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

from looptui.engine.models import Flag
from looptui.engine.verification.check_commands import CheckFiles, check_files
from looptui.engine.verification.config_rules import (
    ALL_MARKERS,
    config_flags,
    family_markers,
    marker_flags,
    relevant_lines,
    sectioned_rules,
    whole_file_config,
)
from looptui.engine.verification.diff_lines import changed, first_changed, normal, quote, search
from looptui.engine.verification.families import (
    FAMILIES,
    TEST_DATA_PATHS,
    RunnerFamily,
    matches_any,
)
from looptui.engine.verification.rule_names import (
    ASSERTION_REMOVED,
    ASSERTION_WEAKENED,
    ONLY_TESTS,
    PROTECTED,
    RUNNER_SHADOWED,
    RUNNER_TAMPERED,
    TEST_CONFIG,
    TEST_DESELECTED,
    TEST_EDITED,
    TEST_FILE_DELETED,
    TEST_PATCHED,
    TEST_REMOVED,
    TEST_SHADOW,
    TEST_SKIPPED,
    TEST_XFAIL,
)
from looptui.engine.verification.runner_rules import runner_access, runner_shadowed
from looptui.engine.verification.test_scopes import Scope, added_code, is_blank, scoped_lines
from looptui.engine.workspace.patch import FilePatch, FileStatus, Line, LineKind, Patch

__all__ = [
    "ASSERTION_REMOVED",
    "ASSERTION_WEAKENED",
    "ONLY_TESTS",
    "PROTECTED",
    "RUNNER_SHADOWED",
    "RUNNER_TAMPERED",
    "TEST_CONFIG",
    "TEST_DESELECTED",
    "TEST_EDITED",
    "TEST_FILE_DELETED",
    "TEST_PATCHED",
    "TEST_REMOVED",
    "TEST_SHADOW",
    "TEST_SKIPPED",
    "TEST_XFAIL",
    "TamperPolicy",
    "inspect_patch",
]


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
        flags += runner_shadowed(file, context.checks)
        configuration = _test_configuration(file, context.checks)
        if configuration is not None:
            kinds.append(_Kind.CONFIG)
            flags += configuration
        elif _is_test_file(file):
            kinds.append(_Kind.TEST)
            if not policy.allow_test_edits:
                flags += _test_content(file, context.added_tests)
                flags += _shadowing_module(file, patch)
        else:
            kinds.append(_Kind.OTHER)
            flags += runner_access(file)
    if not policy.allow_test_edits:
        flags += _only_tests(kinds)
    return list(dict.fromkeys(flags))  # two rules may find the same line


# -- rules -----------------------------------------------------------------------------------


def _protected_files(file: FilePatch, protected: tuple[str, ...]) -> list[Flag]:
    """Any change to a file that a protected glob matches."""
    for path in _paths(file):
        pattern = matches_any(protected, path)
        if pattern is not None:
            message = f"a protected file changed (it matches {pattern})"
            return [Flag(PROTECTED, file.path, first_changed(changed(file)), message)]
    return []


def _test_configuration(file: FilePatch, checks: CheckFiles) -> list[Flag] | None:
    """Flags for a change to what collects or runs the tests; None if `file` is no such file.

    A line that deselects, skips or expects failure gets its own flag; otherwise the file
    gets one flag at its first relevant changed line.
    """
    for path in _paths(file):
        whole = whole_file_config(path, checks)
        if whole is not None:
            what, markers = whole
            return config_flags(file, list(changed(file)), what, markers)
    for path in _paths(file):
        for rule, markers in sectioned_rules(path, checks):
            lines = relevant_lines(file, rule, markers)
            if lines:
                return config_flags(file, lines, "the test configuration", markers or ALL_MARKERS)
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
    assertion_flags, covered = _removed_assertions(file, family, bodies)
    scoped = list(scoped_lines(file, family))
    return [
        *removed_flags,
        *_added_markers(file, family),
        *assertion_flags,
        *_edited_tests(file, family, scoped, covered),
        *_early_exits(file, family, scoped),
        *_swallowed_failures(file, family, scoped, covered),
        *_patched_code(file, family, scoped),
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
    return list(marker_flags(file, list(changed(file)), family_markers((family,), options=False)))


def _removed_assertions(
    file: FilePatch, family: RunnerFamily, bodies: set[int]
) -> tuple[list[Flag], set[int]]:
    """Assertions removed and not added back; one swapped for a trivial statement is named so.
    Also the old line numbers flagged, which other rules leave to these flags."""
    flags: list[Flag] = []
    covered: set[int] = set()
    available = Counter(normal(line.text) for line in changed(file, LineKind.ADDED))
    removed = {normal(line.text) for line in changed(file, LineKind.REMOVED)}
    for hunk in file.hunks:
        trivial = [
            line
            for line in hunk.lines
            if line.kind is LineKind.ADDED and search(family.trivial_statements, line.text)
        ]
        # per run of changed lines, the new checks added there: a removed one was changed
        replacements: list[list[Line]] = [[]]
        for line in hunk.lines:
            if line.kind is LineKind.CONTEXT:
                replacements.append([])
            elif (
                line.kind is LineKind.ADDED
                and line not in trivial
                and normal(line.text) not in removed
                and search((*family.assertions, *family.expected_errors), line.text)
            ):
                replacements[-1].append(line)
        block = 0
        for line in hunk.lines:
            block += line.kind is LineKind.CONTEXT
            if line.kind is not LineKind.REMOVED or line.old_number in bodies:
                continue
            expected = search(family.expected_errors, line.text) is not None
            if not expected and search(family.assertions, line.text) is None:
                continue
            key = normal(line.text)
            if available[key] > 0:  # moved or re-indented, not removed
                available[key] -= 1
                continue
            was = quote(line.text)
            assert line.old_number is not None  # a removed line has an old number
            covered.add(line.old_number)
            if trivial:
                swap = trivial.pop(0)
                message = f"assertion replaced by {quote(swap.text)}: {was}"
                flags.append(Flag(ASSERTION_WEAKENED, file.path, swap.new_number, message))
            else:
                what = "expected-error check" if expected else "assertion"
                if replacements[block]:
                    now = quote(replacements[block].pop(0).text)
                    message = f"{what} changed: `{was}` became `{now}`"
                else:
                    message = f"{what} removed: {was}"
                flags.append(Flag(ASSERTION_REMOVED, file.path, line.old_number, message))
    return flags, covered


def _edited_tests(
    file: FilePatch,
    family: RunnerFamily,
    scoped: list[tuple[Line, Scope | None]],
    covered: set[int],
) -> list[Flag]:
    """Lines removed from the body of a test that stays (its data changed, say), not moved."""
    flags: list[Flag] = []
    available = Counter(normal(line.text) for line in changed(file, LineKind.ADDED))
    for line, scope in scoped:
        if line.kind is not LineKind.REMOVED or scope is None or not scope.existing:
            continue
        if line.old_number in covered or is_blank(family, line.text):
            continue
        key = normal(line.text)
        if available[key] > 0:  # moved or re-indented, not changed
            available[key] -= 1
            continue
        message = f"{scope.name} was edited: {quote(line.text)} was changed or removed"
        flags.append(Flag(TEST_EDITED, file.path, line.old_number, message))
    return flags


def _early_exits(
    file: FilePatch, family: RunnerFamily, scoped: list[tuple[Line, Scope | None]]
) -> list[Flag]:
    """A `return` added inside an existing test: what follows it is never checked."""
    flags: list[Flag] = []
    for line, scope in added_code(file, scoped):
        match = search(family.early_exits, line.text)
        if (
            match is not None
            and scope is not None
            and scope.existing
            and not scope.inner(line.text)
        ):
            message = f"an early {quote(match[0])} was added to {scope.name}"
            flags.append(Flag(ASSERTION_WEAKENED, file.path, line.new_number, message))
    return flags


def _swallowed_failures(
    file: FilePatch,
    family: RunnerFamily,
    scoped: list[tuple[Line, Scope | None]],
    covered: set[int],
) -> list[Flag]:
    """Code added to catch a failing assertion (an `except AssertionError`), outside a new test
    (whose assertions are its own); or a `try` or `suppress` block added in an existing test.
    A hunk whose removed check is already flagged is left to that flag."""
    flags: list[Flag] = []
    skipped = {
        id(line)
        for hunk in file.hunks
        if any(line.old_number in covered for line in hunk.lines if line.kind is LineKind.REMOVED)
        for line in hunk.lines
    }
    for line, scope in added_code(file, scoped):
        if id(line) in skipped or (scope is not None and not scope.existing):
            continue
        match = search(family.swallowing, line.text)
        if match is None and scope is not None and scope.existing:
            match = search(family.guard_blocks, line.text)
        if match is not None:
            where = f" in {scope.name}" if scope is not None else ""
            message = f"a failing assertion may be caught{where}: {quote(line.text)}"
            flags.append(Flag(ASSERTION_WEAKENED, file.path, line.new_number, message))
    return flags


def _patched_code(
    file: FilePatch, family: RunnerFamily, scoped: list[tuple[Line, Scope | None]]
) -> list[Flag]:
    """Code under test replaced from the tests: in an existing test, or outside any test (at
    module level, in a fixture). A new test patching for its own sake is its own business."""
    flags: list[Flag] = []
    for line, scope in added_code(file, scoped):
        if scope is not None and not scope.existing:
            continue
        match = search(family.patches, line.text)
        if match is not None:
            where = f"in {scope.name}" if scope is not None else "outside any test"
            message = f"the code under test is patched {where}: {quote(line.text)}"
            flags.append(Flag(TEST_PATCHED, file.path, line.new_number, message))
    return flags


def _shadowing_module(file: FilePatch, patch: Patch) -> list[Flag]:
    """A module added among the tests under the name of one the tests import or the diff
    touches: with the test directory first on the import path, the tests would run it instead."""
    family = _family_of(file.path)
    if file.status is not FileStatus.ADDED or family is None or family.test_modules is None:
        return []
    stem = PurePosixPath(file.path).stem
    if family.test_modules.fullmatch(stem) or matches_any(TEST_DATA_PATHS, file.path) is None:
        return []
    if stem not in _modules_named(patch, family, besides=file):
        return []
    message = f"{file.path} shadows the module {stem} that the tests import"
    return [Flag(TEST_SHADOW, file.path, None, message)]


def _modules_named(patch: Patch, family: RunnerFamily, besides: FilePatch) -> set[str]:
    """Module names the diff shows, but in `besides`: the parts of its other paths, and the
    top-level modules its test files import on any line."""
    names: set[str] = set()
    for other in patch:
        if other is besides:
            continue
        for path in _paths(other):
            parts = PurePosixPath(path).parts
            names.update(parts[:-1])
            names.add(PurePosixPath(path).stem)
        if _is_test_file(other) and _family_of(other.path) is family:
            for hunk in other.hunks:
                for line in hunk.lines:
                    match = search(family.imports, line.text)
                    if match is not None:
                        names.add(match["module"])
    return names


# -- helpers ---------------------------------------------------------------------------------


def _added_test_names(patch: Patch) -> frozenset[str]:
    names: set[str] = set()
    for file in patch:
        family = _family_of(file.path)
        if family is None or not _is_test_path(file.path):
            continue
        for line in changed(file, LineKind.ADDED):
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
