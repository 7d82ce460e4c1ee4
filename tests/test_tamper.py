"""The tamper guard on real diffs: each cheat is a commit in a real repository, read back with
`Repository.review_diff` and `parse_patch`, as the verifier reads an iteration's change."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from conftest import git, make_repo
from looptui.engine.models import Flag
from looptui.engine.verification import (
    ASSERTION_REMOVED,
    ASSERTION_WEAKENED,
    ONLY_TESTS,
    PROTECTED,
    RUNNER_SHADOWED,
    RUNNER_TAMPERED,
    TEST_CONFIG,
    TEST_DESELECTED,
    TEST_FILE_DELETED,
    TEST_REMOVED,
    TEST_SKIPPED,
    TEST_XFAIL,
    TamperPolicy,
    glob_match,
    inspect_patch,
)
from looptui.engine.verification.check_commands import check_files
from looptui.engine.verification.tamper import TEST_EDITED, TEST_PATCHED, TEST_SHADOW
from looptui.engine.workspace import Repository, parse_patch

PYPROJECT = """\
[project]
name = "calc"
version = "0.1.0"
description = "A small calculator."
readme = "README.md"
requires-python = ">=3.11"
dependencies = [
    "attrs>=23.1",
    "click>=8.1",
    "rich>=13.0",
]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["src"]
addopts = "-ra"
"""
TOTALS = "def total(items):\n    return sum(items) + 1\n"
FIXED_TOTALS = "def total(items):\n    return sum(items)\n"
TEST_TOTALS = """\
from calc.totals import total


def test_total(items):
    assert total(items) == 3


def test_total_of_nothing():
    assert total([]) == 0
    assert total(()) == 0
"""
TEST_DATES = """\
import datetime

import pytest

from calc.dates import parse_date


def test_parse_date():
    assert parse_date("2024-02-29") == datetime.date(2024, 2, 29)


def test_parse_date_rejects_garbage():
    with pytest.raises(ValueError):
        parse_date("yesterday")
"""
TEST_PRICES = """\
from calc.totals import total


def test_total_of_prices():
    prices = [4, 4, 4]
    expected = 12
    assert total(prices) == expected
"""
CONFTEST = """\
import pytest


@pytest.fixture
def items():
    return [1, 1, 1]
"""
CI = """\
name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: ./run_tests.sh
"""
MAKEFILE = "build:\n\tpython -m build\n\ntest:\n\t./run_tests.sh\n"
PROJECT = {
    "pyproject.toml": PYPROJECT,
    "src/calc/__init__.py": "",
    "src/calc/totals.py": TOTALS,
    "src/calc/dates.py": textwrap.dedent(
        """\
        import datetime


        def parse_date(text):
            year, month, day = text.split("-")
            return datetime.date(int(year), int(month), int(day))
        """
    ),
    "tests/conftest.py": CONFTEST,
    "tests/test_totals.py": TEST_TOTALS,
    "tests/test_dates.py": TEST_DATES,
    "tests/test_prices.py": TEST_PRICES,
    "run_tests.sh": '#!/bin/sh\nexec python -m pytest -q "$@"\n',
    "Makefile": MAKEFILE,
    ".github/workflows/ci.yml": CI,
}
POLICY = TamperPolicy(check_commands=("./run_tests.sh",))
FIX = {"src/calc/totals.py": FIXED_TOTALS}

Found = set[tuple[str, str, int | None]]


def commit(repo: Path, files: Mapping[str, str | None]) -> str:
    """Write (or, for None, delete) `files` and commit them; the new commit's id."""
    for relative, text in files.items():
        target = repo / relative
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "an iteration")
    return git(repo, "rev-parse", "HEAD").strip()


def inspect(repo: Path, base: str, head: str, policy: TamperPolicy = POLICY) -> list[Flag]:
    return inspect_patch(parse_patch(Repository(repo).review_diff(base, head)), policy)


def found(flags: list[Flag]) -> Found:
    return {(flag.rule, flag.path, flag.line) for flag in flags}


def line_of(text: str, needle: str) -> int:
    """The number of the one line of `text` holding `needle`."""
    numbers = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(numbers) == 1, f"{needle!r} is on lines {numbers}"
    return numbers[0]


def insert_before(text: str, needle: str, new: str) -> str:
    lines = text.splitlines(keepends=True)
    index = line_of(text, needle) - 1
    return "".join([*lines[:index], new, *lines[index:]])


ONLY: Found = {(ONLY_TESTS, "", None)}


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    repo = make_repo(tmp_path / "calc", PROJECT)
    return repo, git(repo, "rev-parse", "HEAD").strip()


# -- cheats ----------------------------------------------------------------------------------


def test_a_deleted_test_file_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    head = commit(repo, {"tests/test_dates.py": None})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_FILE_DELETED, "tests/test_dates.py", None)} | ONLY
    assert "tests/test_dates.py was deleted" in [flag.message for flag in flags]


def test_a_removed_test_function_is_flagged_once(project: tuple[Path, str]) -> None:
    repo, base = project
    cut = TEST_TOTALS[: TEST_TOTALS.index("\n\ndef test_total_of_nothing")] + "\n"
    head = commit(repo, {**FIX, "tests/test_totals.py": cut})
    flags = inspect(repo, base, head)
    line = line_of(TEST_TOTALS, "def test_total_of_nothing")
    # its assertions went with it: no flag of their own
    assert found(flags) == {(TEST_REMOVED, "tests/test_totals.py", line)}
    assert flags[0].message == "test_total_of_nothing was removed"


def test_a_test_renamed_and_rewritten_is_a_removal(project: tuple[Path, str]) -> None:
    repo, base = project
    renamed = TEST_TOTALS.replace("def test_total(items)", "def check_total(items)")
    head = commit(repo, {**FIX, "tests/test_totals.py": renamed})
    flags = inspect(repo, base, head)
    line = line_of(TEST_TOTALS, "def test_total(items)")
    assert found(flags) == {(TEST_REMOVED, "tests/test_totals.py", line)}


@pytest.mark.parametrize(
    ("marker", "rule", "shown"),
    [
        ('@pytest.mark.skip(reason="flaky")\n', TEST_SKIPPED, "@pytest.mark.skip"),
        ('@pytest.mark.skipif(True, reason="later")\n', TEST_SKIPPED, "@pytest.mark.skipif"),
        ("@pytest.mark.xfail\n", TEST_XFAIL, "@pytest.mark.xfail"),
    ],
)
def test_a_skip_or_xfail_marker_is_flagged(
    project: tuple[Path, str], marker: str, rule: str, shown: str
) -> None:
    repo, base = project
    marked = "import pytest\n" + insert_before(TEST_TOTALS, "def test_total(items)", marker)
    head = commit(repo, {"tests/test_totals.py": marked})
    flags = inspect(repo, base, head)
    line = line_of(marked, marker.strip())
    assert found(flags) == {(rule, "tests/test_totals.py", line)} | ONLY
    expected = (
        "a test is skipped" if rule == TEST_SKIPPED else "a test is marked as expected to fail"
    )
    assert f"{expected}: {shown}" in [flag.message for flag in flags]


def test_a_skip_call_inside_a_test_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    skipped = TEST_TOTALS.replace(
        "def test_total(items):\n", 'def test_total(items):\n    pytest.skip("later")\n'
    )
    head = commit(repo, {**FIX, "tests/test_totals.py": skipped})
    line = line_of(skipped, "pytest.skip(")
    assert found(inspect(repo, base, head)) == {(TEST_SKIPPED, "tests/test_totals.py", line)}


def test_a_removed_assertion_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    weaker = TEST_TOTALS.replace("    assert total(()) == 0\n", "")
    head = commit(repo, {"tests/test_totals.py": weaker})
    flags = inspect(repo, base, head)
    line = line_of(TEST_TOTALS, "assert total(()) == 0")
    assert found(flags) == {(ASSERTION_REMOVED, "tests/test_totals.py", line)} | ONLY
    assert "assertion removed: assert total(()) == 0" in [flag.message for flag in flags]


def test_an_assertion_swapped_for_assert_true_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    swapped = TEST_TOTALS.replace("assert total(items) == 3", "assert True")
    head = commit(repo, {**FIX, "tests/test_totals.py": swapped})
    flags = inspect(repo, base, head)
    line = line_of(swapped, "assert True")
    assert found(flags) == {(ASSERTION_WEAKENED, "tests/test_totals.py", line)}
    assert flags[0].message == "assertion replaced by assert True: assert total(items) == 3"


def test_a_removed_pytest_raises_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    suppressed = TEST_DATES.replace(
        "    with pytest.raises(ValueError):", "    with contextlib.suppress(ValueError):"
    )
    head = commit(repo, {**FIX, "tests/test_dates.py": "import contextlib\n" + suppressed})
    flags = inspect(repo, base, head)
    line = line_of(TEST_DATES, "pytest.raises")
    assert found(flags) == {(ASSERTION_REMOVED, "tests/test_dates.py", line)}
    assert flags[0].message == "expected-error check removed: with pytest.raises(ValueError):"


def test_a_conftest_hook_that_deselects_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    hook = (
        "\n\ndef pytest_collection_modifyitems(config, items):\n"
        '    items[:] = [item for item in items if "total" not in item.name]\n'
    )
    head = commit(repo, {**FIX, "tests/conftest.py": CONFTEST + hook})
    flags = inspect(repo, base, head)
    line = line_of(CONFTEST + hook, "def pytest_collection_modifyitems")
    assert found(flags) == {(TEST_DESELECTED, "tests/conftest.py", line)}
    assert flags[0].message == "tests are deselected: pytest_collection_modifyitems"


@pytest.mark.parametrize(
    ("addopts", "shown"),
    [
        ("addopts = \"-ra -k 'not total'\"", "-k"),
        ('addopts = "-ra --deselect tests/test_totals.py::test_total"', "--deselect"),
    ],
)
def test_pyproject_addopts_that_deselect_are_flagged(
    project: tuple[Path, str], addopts: str, shown: str
) -> None:
    repo, base = project
    changed = PYPROJECT.replace('addopts = "-ra"', addopts)
    head = commit(repo, {**FIX, "pyproject.toml": changed})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_DESELECTED, "pyproject.toml", line_of(changed, "addopts"))}
    assert flags[0].message == f"tests are deselected: {shown}"


def test_a_pytest_section_change_deep_in_the_file_is_config(project: tuple[Path, str]) -> None:
    """The section header is in the hunk's context: a plain option change there is flagged."""
    repo, base = project
    changed = PYPROJECT.replace('pythonpath = ["src"]', 'pythonpath = ["src", "stubs"]')
    head = commit(repo, {**FIX, "pyproject.toml": changed})
    line = line_of(changed, "pythonpath")
    assert found(inspect(repo, base, head)) == {(TEST_CONFIG, "pyproject.toml", line)}


def test_a_ci_file_edit_is_flagged_even_next_to_a_fix(project: tuple[Path, str]) -> None:
    repo, base = project
    relaxed = CI.replace("- run: ./run_tests.sh", "- run: ./run_tests.sh || true")
    head = commit(repo, {**FIX, ".github/workflows/ci.yml": relaxed})
    flags = inspect(repo, base, head)
    line = line_of(relaxed, "|| true")
    assert found(flags) == {(TEST_CONFIG, ".github/workflows/ci.yml", line)}
    assert flags[0].message.startswith("a CI file changed: ")


def test_the_check_script_is_guarded_only_as_a_check_command(project: tuple[Path, str]) -> None:
    repo, base = project
    script = '#!/bin/sh\npython -m pytest -q "$@" || exit 0\n'
    head = commit(repo, {**FIX, "run_tests.sh": script})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_CONFIG, "run_tests.sh", 2)}
    assert flags[0].message.startswith("a file the check commands run changed")
    # the same edit is an ordinary file when no check runs it
    assert inspect(repo, base, head, TamperPolicy()) == []


def test_a_makefile_counts_by_the_target_the_check_runs(project: tuple[Path, str]) -> None:
    repo, base = project
    makefile = MAKEFILE.replace("\tpython -m build", "\tpython -m build --wheel")
    makefile = makefile.replace("\t./run_tests.sh", "\t./run_tests.sh -x")
    head = commit(repo, {**FIX, "Makefile": makefile})
    policy = TamperPolicy(check_commands=("make test",))
    # the build target's change is not the tests' business; the test target's is
    assert found(inspect(repo, base, head, policy)) == {
        (TEST_CONFIG, "Makefile", line_of(makefile, "run_tests.sh -x"))
    }


def test_a_protected_glob_flags_any_change(project: tuple[Path, str]) -> None:
    repo, base = project
    dates = (repo / "src/calc/dates.py").read_text().replace('split("-")', 'split("/")')
    head = commit(repo, {"src/calc/dates.py": dates})
    policy = TamperPolicy(protected=("src/**/dates.py",))
    flags = inspect(repo, base, head, policy)
    assert found(flags) == {(PROTECTED, "src/calc/dates.py", line_of(dates, 'split("/")'))}
    assert flags[0].message == "a protected file changed (it matches src/**/dates.py)"
    assert inspect(repo, base, head, TamperPolicy(protected=("tests/**",))) == []


def test_a_diff_of_new_tests_alone_is_only_tests(project: tuple[Path, str]) -> None:
    repo, base = project
    more = TEST_TOTALS + "\n\ndef test_total_of_one():\n    assert total([5]) == 5\n"
    head = commit(repo, {"tests/test_totals.py": more})
    assert found(inspect(repo, base, head)) == ONLY


def test_allowed_test_edits_still_guard_config_and_protected_files(
    project: tuple[Path, str],
) -> None:
    repo, base = project
    hook = "\n\ndef pytest_collection_modifyitems(config, items):\n    items.clear()\n"
    head = commit(
        repo,
        {
            "tests/test_dates.py": None,
            "tests/test_totals.py": TEST_TOTALS.replace("assert total(items) == 3", "pass"),
            "tests/conftest.py": CONFTEST + hook,
            "src/calc/dates.py": "",
        },
    )
    policy = TamperPolicy(protected=("src/calc/dates.py",), allow_test_edits=True)
    assert found(inspect(repo, base, head, policy)) == {
        (TEST_DESELECTED, "tests/conftest.py", line_of(CONFTEST + hook, "def pytest_collection")),
        (PROTECTED, "src/calc/dates.py", 1),
    }


def test_changed_data_in_an_existing_test_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    changed = TEST_PRICES.replace("expected = 12", "expected = 13")
    head = commit(repo, {**FIX, "tests/test_prices.py": changed})
    flags = inspect(repo, base, head)
    line = line_of(TEST_PRICES, "expected = 12")
    assert found(flags) == {(TEST_EDITED, "tests/test_prices.py", line)}
    assert flags[0].message == (
        "test_total_of_prices was edited: expected = 12 was changed or removed"
    )


def test_an_early_return_in_an_existing_test_is_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    early = insert_before(TEST_TOTALS, "assert total(()) == 0", "    return\n")
    head = commit(repo, {**FIX, "tests/test_totals.py": early})
    flags = inspect(repo, base, head)
    line = line_of(early, "return")
    assert found(flags) == {(ASSERTION_WEAKENED, "tests/test_totals.py", line)}
    assert flags[0].message == "an early return was added to test_total_of_nothing"


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("try:", "except AssertionError:"),
        ("try:", "except Exception:"),
        ("with contextlib.suppress(AssertionError):", None),
        ("with pytest.raises(AssertionError):", None),
    ],
)
def test_an_assertion_wrapped_to_be_caught_is_flagged(
    project: tuple[Path, str], opening: str, closing: str | None
) -> None:
    """The assertion is only re-indented, which alone is no removal: the wrapper is flagged."""
    repo, base = project
    wrapped = f"    {opening}\n        assert total(items) == 3\n"
    wrapped += f"    {closing}\n        pass\n" if closing else ""
    caught = "import contextlib\nimport pytest\n" + TEST_TOTALS.replace(
        "    assert total(items) == 3\n", wrapped
    )
    head = commit(repo, {**FIX, "tests/test_totals.py": caught})
    flags = inspect(repo, base, head)
    needles = [needle for needle in (opening, closing) if needle]
    assert found(flags) == {
        (ASSERTION_WEAKENED, "tests/test_totals.py", line_of(caught, needle)) for needle in needles
    }
    assert f"a failing assertion may be caught in test_total: {needles[-1]}" in [
        flag.message for flag in flags
    ]


PATCH_TOTAL = '    monkeypatch.setattr("calc.totals.total", lambda items: 3)\n'
AUTOUSE = (
    "\n\n@pytest.fixture(autouse=True)\ndef _totals(monkeypatch):\n" + PATCH_TOTAL.strip() + "\n"
)


@pytest.mark.parametrize(
    ("path", "text", "needles"),
    [
        pytest.param(
            "tests/test_totals.py",
            TEST_TOTALS.replace(
                "def test_total(items):\n", "def test_total(items, monkeypatch):\n" + PATCH_TOTAL
            ),
            ["monkeypatch.setattr"],
            id="in-an-existing-test",
        ),
        pytest.param(
            "tests/test_totals.py",
            "import calc.totals\n" + TEST_TOTALS + "\n\ncalc.totals.total = lambda items: 3\n",
            ["calc.totals.total ="],
            id="at-module-level",
        ),
        pytest.param(
            "tests/test_totals.py",
            "import pytest\n" + TEST_TOTALS + AUTOUSE,
            ["autouse=True", "monkeypatch.setattr"],
            id="autouse-fixture",
        ),
        pytest.param(
            "tests/conftest.py",
            CONFTEST + AUTOUSE,
            ["autouse=True", "monkeypatch.setattr"],
            id="autouse-in-conftest",
        ),
    ],
)
def test_patching_the_code_under_test_is_flagged(
    project: tuple[Path, str], path: str, text: str, needles: list[str]
) -> None:
    repo, base = project
    head = commit(repo, {**FIX, path: text})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_PATCHED, path, line_of(text, needle)) for needle in needles}
    assert all(flag.message.startswith("the code under test is patched") for flag in flags)


@pytest.mark.parametrize(
    ("files", "shadow"),
    [
        # the fix's path names the package calc
        pytest.param({**FIX, "tests/calc.py": "total = sum\n"}, "calc", id="path"),
        # no source path names it, but a test file's import line in the diff does
        pytest.param(
            {
                "README.md": "# calc\n",
                "tests/calc.py": "total = sum\n",
                "tests/test_totals.py": "import math\n" + TEST_TOTALS,
            },
            "calc",
            id="import",
        ),
    ],
)
def test_a_module_shadowing_the_code_under_test_is_flagged(
    project: tuple[Path, str], files: dict[str, str], shadow: str
) -> None:
    repo, base = project
    head = commit(repo, files)
    flags = inspect(repo, base, head)
    path = f"tests/{shadow}.py"
    assert found(flags) == {(TEST_SHADOW, path, None)}
    assert flags[0].message == f"{path} shadows the module {shadow} that the tests import"


def test_a_looptui_toml_change_is_test_configuration(project: tuple[Path, str]) -> None:
    repo, base = project
    config = '[loop]\nchecks = ["./run_tests.sh"]\n'
    start = commit(repo, {"looptui.toml": config})
    head = commit(repo, {**FIX, "looptui.toml": config.replace("./run_tests.sh", "true")})
    flags = inspect(repo, start, head)
    assert found(flags) == {(TEST_CONFIG, "looptui.toml", 2)}
    assert flags[0].message == 'the looptui configuration changed: checks = ["./run_tests.sh"]'
    assert found(inspect(repo, base, start)) == {(TEST_CONFIG, "looptui.toml", 1)} | ONLY


@pytest.mark.parametrize(
    ("files", "checks", "message"),
    [
        pytest.param(
            {"pytest.py": 'print("4 passed")\n'},
            ("python -m pytest -q",),
            "pytest.py shadows pytest, a module of the test runner",
            id="root-pytest",
        ),
        pytest.param(
            {"src/_pytest/__init__.py": "", "src/_pytest/python.py": "\n"},
            ("./run_tests.sh",),
            "src/_pytest/__init__.py shadows _pytest, a module of the test runner",
            id="pytest-internals",
        ),
        pytest.param(
            {"checks.py": 'print("ok")\n'},
            ("python -W error -m checks --all",),
            "checks.py shadows checks, the module a check runs with python -m",
            id="check-module",
        ),
    ],
)
def test_a_module_shadowing_the_test_runner_is_flagged(
    project: tuple[Path, str], files: dict[str, str], checks: tuple[str, ...], message: str
) -> None:
    repo, base = project
    head = commit(repo, {**FIX, **files})
    flags = inspect(repo, base, head, TamperPolicy(check_commands=checks))
    path = message.split()[0]
    assert found(flags) == {(RUNNER_SHADOWED, path, None)}
    assert flags[0].message == message


@pytest.mark.parametrize("name", ["pytest.toml", ".pytest.toml"])
def test_a_pytest_toml_is_test_configuration(project: tuple[Path, str], name: str) -> None:
    repo, base = project
    head = commit(repo, {**FIX, name: '[pytest]\nminversion = "9.0"\n'})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_CONFIG, name, 1)}
    assert flags[0].message == "the python test configuration changed: [pytest]"


@pytest.mark.parametrize(
    ("path", "text", "needle"),
    [
        pytest.param(
            "tests/__init__.py",
            'import sys\n\nsys.path.insert(0, "stubs")\n',
            "sys.path.insert",
            id="tests-init",
        ),
        pytest.param(
            "tests/conftest.py",
            'import sys\n\nsys.path[:0] = ["stubs"]\n' + CONFTEST,
            "sys.path[:0]",
            id="conftest-slice",
        ),
        pytest.param(
            "tests/test_totals.py",
            'import os\nimport site\nsite.addsitedir("stubs")\n' + TEST_TOTALS,
            "site.addsitedir",
            id="addsitedir",
        ),
        pytest.param(
            "tests/test_prices.py",
            TEST_PRICES.replace(
                "    prices = [4, 4, 4]\n",
                '    os.environ["PYTHONPATH"] = "stubs"\n    prices = [4, 4, 4]\n',
            ),
            "PYTHONPATH",
            id="pythonpath-in-a-test",
        ),
    ],
)
def test_import_path_tampering_in_tests_is_flagged(
    project: tuple[Path, str], path: str, text: str, needle: str
) -> None:
    repo, base = project
    head = commit(repo, {**FIX, path: text})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_PATCHED, path, line_of(text, needle))}


HOOK = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
"""


@pytest.mark.parametrize(
    ("path", "text", "needles"),
    [
        pytest.param(
            "src/calc/plugin.py",
            HOOK.replace("import pytest\n", ""),
            ["@pytest.hookimpl", "def pytest_runtest_makereport"],
            id="hook-in-source",
        ),
        pytest.param(
            "src/calc/__init__.py",
            'pytest_plugins = ["calc.plugin"]\n',
            ["pytest_plugins"],
            id="plugins-in-source",
        ),
        pytest.param(
            "tests/test_prices.py",
            TEST_PRICES + "\n\ndef pytest_assertrepr_compare(op, left, right):\n    return []\n",
            ["def pytest_assertrepr_compare"],
            id="hook-in-a-test-file",
        ),
        pytest.param(
            ".github/workflows/ci.yml",
            CI.replace("./run_tests.sh", "python -m pytest -p calc.plugin"),
            ["-p calc.plugin"],
            id="plugin-option-in-ci",
        ),
        pytest.param(
            "pyproject.toml",
            PYPROJECT + '\n[project.entry-points.pytest11]\ncalc = "calc.plugin"\n',
            ["[project.entry-points.pytest11]"],
            id="entry-point",
        ),
    ],
)
def test_a_runner_plugin_or_hook_is_flagged(
    project: tuple[Path, str], path: str, text: str, needles: list[str]
) -> None:
    repo, base = project
    head = commit(repo, {**FIX, path: text})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_CONFIG, path, line_of(text, needle)) for needle in needles}
    assert all("a test runner plugin or hook is added" in flag.message for flag in flags)


MAKE_VARIABLES = (
    "build:\n\tpython -m build\n\nTESTFLAGS = -q\n\ntest:\n\t./run_tests.sh $(TESTFLAGS)\n"
)


@pytest.mark.parametrize(
    ("changed", "rule"),
    [
        (MAKE_VARIABLES.replace("TESTFLAGS = -q", "TESTFLAGS = -q -x"), TEST_CONFIG),
        (
            MAKE_VARIABLES.replace("TESTFLAGS = -q", "TESTFLAGS = -q -k 'not total'"),
            TEST_DESELECTED,
        ),
        (
            MAKE_VARIABLES.replace("TESTFLAGS = -q", "export PYTEST_CONFIGS = calc.plugin"),
            TEST_CONFIG,
        ),
    ],
    ids=["variable", "deselecting", "export"],
)
def test_a_variable_of_the_makefile_a_check_runs_is_configuration(
    project: tuple[Path, str], changed: str, rule: str
) -> None:
    """The variable is set under the build target, but it reaches the test target's recipe."""
    repo, _ = project
    start = commit(repo, {"Makefile": MAKE_VARIABLES})
    head = commit(repo, {**FIX, "Makefile": changed})
    policy = TamperPolicy(check_commands=("make test",))
    flags = inspect(repo, start, head, policy)
    assert found(flags) == {(rule, "Makefile", 4)}
    # with no check running it, the Makefile's variables outside test targets are its own
    assert inspect(repo, start, head, TamperPolicy()) == []


@pytest.mark.parametrize(
    "added",
    [
        'import sys\nif "pytest" in sys.modules:\n    total = len\n',
        "import _pytest.python\n",
        "from _pytest import runner\n",
        'import os\nFAKE = os.environ.get("PYTEST_CURRENT_TEST")\n',
        "import unittest\nunittest.TestCase.run = lambda self, result=None: None\n",
    ],
    ids=["sys-modules", "import-internals", "from-internals", "current-test", "patch-unittest"],
)
def test_source_reaching_into_the_runner_is_flagged(project: tuple[Path, str], added: str) -> None:
    repo, base = project
    text = FIXED_TOTALS + added
    head = commit(repo, {"src/calc/totals.py": text})
    flags = inspect(repo, base, head)
    assert [(flag.rule, flag.path) for flag in flags] == [(RUNNER_TAMPERED, "src/calc/totals.py")]
    assert flags[0].message.startswith("code outside the tests reaches into the test runner: ")


def test_a_changed_assertion_says_what_it_became(project: tuple[Path, str]) -> None:
    repo, base = project
    changed = TEST_TOTALS.replace("assert total(()) == 0", "assert total(()) >= 0")
    head = commit(repo, {**FIX, "tests/test_totals.py": changed})
    flags = inspect(repo, base, head)
    line = line_of(TEST_TOTALS, "assert total(()) == 0")
    assert found(flags) == {(ASSERTION_REMOVED, "tests/test_totals.py", line)}
    assert flags[0].message == (
        "assertion changed: `assert total(()) == 0` became `assert total(()) >= 0`"
    )


# -- honest changes --------------------------------------------------------------------------


def test_a_new_module_and_a_new_test_setting_pythonpath_are_not_flagged(
    project: tuple[Path, str],
) -> None:
    """A module inside the package is no runner's, whatever its name; a new test may set its
    own environment; `mkdir -p` in a check script loads no plugin."""
    repo, base = project
    new_test = textwrap.dedent(
        """\
        from calc.py import double


        def test_double(monkeypatch):
            monkeypatch.setenv("PYTHONPATH", "src")
            assert double(2) == 4
        """
    )
    head = commit(
        repo,
        {
            **FIX,
            "src/calc/py.py": "def double(x):\n    return 2 * x\n",
            "tests/test_double.py": new_test,
        },
    )
    assert inspect(repo, base, head, TamperPolicy(check_commands=("python -m pytest",))) == []


def test_a_one_line_source_fix_is_not_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    head = commit(repo, FIX)
    assert inspect(repo, base, head) == []


def test_a_fix_with_a_new_test_and_assertion_is_not_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    more = TEST_TOTALS.replace(
        "    assert total(()) == 0\n", "    assert total(()) == 0\n    assert total([0]) == 0\n"
    )
    more += "\n\ndef test_total_of_one():\n    assert total([5]) == 5\n"
    head = commit(repo, {**FIX, "tests/test_totals.py": more})
    assert inspect(repo, base, head) == []


def test_a_fix_with_a_new_test_file_is_not_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    new = "from calc.totals import total\n\n\ndef test_negative():\n    assert total([-1]) == -1\n"
    head = commit(repo, {**FIX, "tests/test_negative.py": new})
    assert inspect(repo, base, head) == []


def test_a_new_test_quoting_markers_in_strings_is_not_flagged(project: tuple[Path, str]) -> None:
    """Markers count where code stands: a test about pytest itself may name them in strings."""
    repo, base = project
    new = textwrap.dedent(
        """\
        import subprocess
        import sys


        def test_slow_tests_can_be_left_out(tmp_path):
            (tmp_path / "test_x.py").write_text("@pytest.mark.skip\\ndef test_x(): pass\\n")
            argv = [sys.executable, "-m", "pytest", "-k", "not slow", "--deselect", "x"]
            assert subprocess.run(argv, cwd=tmp_path).returncode in (0, 5)
        """
    )
    head = commit(repo, {**FIX, "tests/test_runner_options.py": new})
    assert inspect(repo, base, head) == []


def test_a_fix_with_a_new_test_using_monkeypatch_and_a_helper_is_not_flagged(
    project: tuple[Path, str],
) -> None:
    """A new test may patch for its own sake, and a helper module may sit beside the tests."""
    repo, base = project
    more = TEST_TOTALS + textwrap.dedent(
        """\

        def test_total_reads_no_environment(monkeypatch):
            monkeypatch.setattr("os.environ", {})
            try:
                assert total(make_items()) == 2
            finally:
                pass
        """
    )
    more = "from helpers import make_items\n" + more
    head = commit(
        repo,
        {
            **FIX,
            "tests/test_totals.py": more,
            "tests/helpers.py": "def make_items():\n    return [1, 1]\n",
        },
    )
    assert inspect(repo, base, head) == []


def test_a_helper_function_added_inside_an_existing_test_is_not_flagged(
    project: tuple[Path, str],
) -> None:
    """Its `return` ends the helper, not the test; the new assertion is an addition."""
    repo, base = project
    more = TEST_TOTALS.replace(
        "    assert total(()) == 0\n",
        "    assert total(()) == 0\n\n    def empty():\n        return []\n\n"
        "    assert total(empty()) == 0\n",
    )
    head = commit(repo, {**FIX, "tests/test_totals.py": more})
    assert inspect(repo, base, head) == []


def test_a_dependency_bump_with_a_fix_is_not_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    bumped = PYPROJECT.replace('"click>=8.1"', '"click>=8.2"').replace(
        'version = "0.1.0"', 'version = "0.1.1"'
    )
    head = commit(repo, {**FIX, "pyproject.toml": bumped})
    assert inspect(repo, base, head) == []


def test_an_assertion_moved_within_a_test_file_is_not_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    moved = TEST_TOTALS.replace(
        "    assert total([]) == 0\n    assert total(()) == 0\n",
        "    assert total(()) == 0\n    assert total([]) == 0\n",
    )
    head = commit(repo, {**FIX, "tests/test_totals.py": moved})
    assert inspect(repo, base, head) == []


# -- other languages -------------------------------------------------------------------------

SUM_TEST_JS = """\
const { sum } = require("./sum");

test("adds", () => {
  expect(sum(1, 2)).toBe(3);
});
"""
PACKAGE_JSON = """\
{
  "name": "sum",
  "version": "1.0.0",
  "scripts": {
    "test": "jest"
  },
  "devDependencies": {
    "jest": "^29.0.0"
  }
}
"""
SUM_TEST_GO = """\
package sum

import "testing"

func TestSum(t *testing.T) {
\tif Sum(1, 2) != 3 {
\t\tt.Fatal("wrong sum")
\t}
}
"""


def test_a_jest_skip_is_flagged(tmp_path: Path) -> None:
    files = {
        "package.json": PACKAGE_JSON,
        "src/sum.js": "exports.sum = (a, b) => a - b;\n",
        "src/sum.test.js": SUM_TEST_JS,
    }
    repo = make_repo(tmp_path / "js", files)
    base = git(repo, "rev-parse", "HEAD").strip()
    head = commit(repo, {"src/sum.test.js": SUM_TEST_JS.replace('test("adds"', 'test.skip("adds"')})
    flags = inspect(repo, base, head, TamperPolicy(check_commands=("npm test",)))
    assert found(flags) == {(TEST_SKIPPED, "src/sum.test.js", 3)} | ONLY
    assert "a test is skipped: test.skip" in [flag.message for flag in flags]
    # the test script is test configuration; the package's version is not
    package = PACKAGE_JSON.replace('"jest"\n', '"jest || true"\n')
    fixed = commit(
        repo, {"src/sum.js": "exports.sum = (a, b) => a + b;\n", "package.json": package}
    )
    bump = commit(repo, {"package.json": package.replace("1.0.0", "1.0.1")})
    assert found(inspect(repo, head, fixed)) == {(TEST_CONFIG, "package.json", 5)}
    assert inspect(repo, fixed, bump) == []


def test_a_go_skip_is_flagged(tmp_path: Path) -> None:
    files = {
        "go.mod": "module example.com/sum\n\ngo 1.22\n",
        "sum.go": "package sum\n\nfunc Sum(a, b int) int { return a - b }\n",
        "sum_test.go": SUM_TEST_GO,
    }
    repo = make_repo(tmp_path / "go", files)
    base = git(repo, "rev-parse", "HEAD").strip()
    skipped = insert_before(SUM_TEST_GO, "if Sum", '\tt.Skip("flaky")\n')
    head = commit(repo, {"sum_test.go": skipped})
    flags = inspect(repo, base, head)
    assert found(flags) == {(TEST_SKIPPED, "sum_test.go", 6)} | ONLY
    assert "a test is skipped: t.Skip" in [flag.message for flag in flags]


# -- the pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("tests/**", "tests/unit/test_a.py", True),
        ("tests/**", "src/tests/test_a.py", False),
        ("**/dates.py", "dates.py", True),
        ("src/**/dates.py", "src/calc/dates.py", True),
        ("src/*.py", "src/calc/dates.py", False),
        ("*.lock", "deep/down/uv.lock", True),
        ("[Mm]akefile", "Makefile", True),
        ("docs/", "docs/index.md", True),
    ],
)
def test_glob_match(pattern: str, path: str, matches: bool) -> None:
    assert glob_match(pattern, path) is matches


def test_check_commands_name_the_files_they_run() -> None:
    files = check_files(
        [
            "./run_tests.sh",
            "python scripts/check.py --strict",
            "make test",
            "tox -e py311",
            "npm test && npm run lint",
            "CI=1 uv run bash ci/check.sh",
            "python -m pytest -q",
        ]
    )
    assert files.whole == {"run_tests.sh", "scripts/check.py", "tox.ini", "ci/check.sh"}
    assert files.parts == {"Makefile": {"test"}, "package.json": {"test", "lint"}}
    assert files.modules == {"pytest"}
    assert files.makefiles == {"Makefile"}
