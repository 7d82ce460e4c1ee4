"""The tamper guard on changes to the tests themselves: removed, skipped and xfailed tests,
weakened or caught assertions, edited data, early returns, patching and shadowing the code
under test, and the honest test changes that must pass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import git, make_repo
from looptui.engine.verification import (
    ASSERTION_REMOVED,
    ASSERTION_WEAKENED,
    TEST_CONFIG,
    TEST_FILE_DELETED,
    TEST_REMOVED,
    TEST_SKIPPED,
    TEST_XFAIL,
    TamperPolicy,
)
from looptui.engine.verification.tamper import TEST_EDITED, TEST_PATCHED, TEST_SHADOW
from tamper_support import (
    CONFTEST,
    FIX,
    ONLY,
    TEST_DATES,
    TEST_PRICES,
    TEST_TOTALS,
    commit,
    found,
    insert_before,
    inspect,
    line_of,
    make_project,
)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    return make_project(tmp_path)


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
