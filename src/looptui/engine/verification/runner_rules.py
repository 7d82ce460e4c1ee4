"""The rules for the test runner itself: a module added under its name, and code outside the
tests that loads plugins into it or reaches into it.

A suite can be made to pass without touching a test: a root `pytest.py` that prints
"4 passed" runs instead of pytest under `python -m pytest`, and a hook or a `sys.modules`
check in the source can change what the runner reports. Production code never needs these.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath

from looptui.engine.models import Flag
from looptui.engine.verification.check_commands import CheckFiles
from looptui.engine.verification.diff_lines import changed, normal, quote, search
from looptui.engine.verification.families import FAMILIES, Patterns
from looptui.engine.verification.rule_names import RUNNER_SHADOWED, RUNNER_TAMPERED, TEST_CONFIG
from looptui.engine.workspace.patch import FilePatch, FileStatus, Line, LineKind

# Directories that are commonly an import root (`pythonpath = ["src"]`, pytest's rootdir
# insertion for tests/): a module directly in one is importable under its own name.
_IMPORT_ROOTS = ("src", "lib", "tests", "test")
# The files that make a module or a regular package: a namespace package directory alone
# never wins over an installed regular package, so it shadows nothing.
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")


def runner_shadowed(file: FilePatch, checks: CheckFiles) -> list[Flag]:
    """A module or package added under the name of a test runner (or its internals), or of a
    module a check runs with `python -m`: it would be imported in its place."""
    path = file.new_path
    if path is None or (file.status is not FileStatus.ADDED and path == file.old_path):
        return []
    name = _top_module(path)
    if name is None:
        return []
    runners = frozenset().union(*(family.runner_modules for family in FAMILIES))
    if name in runners:
        message = f"{path} shadows {name}, a module of the test runner"
    elif name in checks.modules:
        message = f"{path} shadows {name}, the module a check runs with python -m"
    else:
        return []
    return [Flag(RUNNER_SHADOWED, file.path, None, message)]


def runner_access(file: FilePatch) -> list[Flag]:
    """Lines added to a source file (no test, no test configuration) that register a plugin
    or hook with the runner, or import, inspect or patch the runner."""
    family = next((f for f in FAMILIES if file.path.endswith(f.extensions)), None)
    if family is None or file.binary:
        return []
    flags: list[Flag] = []
    for line in _new_lines(file):
        plugin = _shown(family.plugin_markers, line.text)
        if plugin is not None:
            message = f"a test runner plugin or hook is added outside the tests: {plugin}"
            flags.append(Flag(TEST_CONFIG, file.path, line.new_number, message))
            continue
        if _shown(family.runner_access, line.text) is not None:
            message = f"code outside the tests reaches into the test runner: {quote(line.text)}"
            flags.append(Flag(RUNNER_TAMPERED, file.path, line.new_number, message))
    return flags


def _top_module(path: str) -> str | None:
    """The top-level module that `path` makes importable from an import root, if it is a
    module file or a regular package's `__init__`."""
    parts = PurePosixPath(path).parts
    if len(parts) > 1 and parts[0] in _IMPORT_ROOTS:
        parts = parts[1:]
    leaf = PurePosixPath(parts[-1])
    if leaf.suffix not in _MODULE_SUFFIXES:
        return None
    if len(parts) == 1:
        return leaf.name.split(".", 1)[0]  # `pytest.cpython-312-x86_64-linux-gnu.so` too
    if len(parts) == 2 and leaf.stem == "__init__":
        return parts[0]
    return None


def _new_lines(file: FilePatch) -> Iterator[Line]:
    """The added lines that were not in the file before (moved or re-indented)."""
    before = Counter(normal(line.text) for line in changed(file, LineKind.REMOVED))
    for line in changed(file, LineKind.ADDED):
        key = normal(line.text)
        if before[key] > 0:
            before[key] -= 1
            continue
        yield line


def _shown(patterns: Patterns, text: str) -> str | None:
    match = search(patterns, text)
    if match is None:
        return None
    return match["marker"] if "marker" in match.re.groupindex else match[0].strip()
