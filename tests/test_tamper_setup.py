"""The tamper guard on what runs the tests: test configuration, CI and check files, Makefiles,
pytest.toml, runner plugins and hooks, shadowing or reaching into the runner, protected globs
and looptui.toml, with the honest configuration changes that must pass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from looptui.engine.verification import (
    PROTECTED,
    RUNNER_SHADOWED,
    RUNNER_TAMPERED,
    TEST_CONFIG,
    TEST_DESELECTED,
    TamperPolicy,
    glob_match,
)
from looptui.engine.verification.check_commands import check_files
from looptui.engine.verification.tamper import TEST_PATCHED
from tamper_support import (
    CI,
    CONFTEST,
    FIX,
    FIXED_TOTALS,
    MAKEFILE,
    ONLY,
    PYPROJECT,
    TEST_PRICES,
    TEST_TOTALS,
    commit,
    found,
    inspect,
    line_of,
    make_project,
)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    return make_project(tmp_path)


# -- cheats ----------------------------------------------------------------------------------


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


def test_a_dependency_bump_with_a_fix_is_not_flagged(project: tuple[Path, str]) -> None:
    repo, base = project
    bumped = PYPROJECT.replace('"click>=8.1"', '"click>=8.2"').replace(
        'version = "0.1.0"', 'version = "0.1.1"'
    )
    head = commit(repo, {**FIX, "pyproject.toml": bumped})
    assert inspect(repo, base, head) == []


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
