"""The denominator guard's reading of test runners' summaries: real pytest and unittest runs
on a generated project, literal jest, vitest and go output, and the comparison's flags."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from looptui.engine.verification import (
    FEWER_TESTS,
    MORE_SKIPPED,
    TestCounts,
    compare_counts,
    parse_counts,
)

MIXED_TESTS = textwrap.dedent(
    """\
    import pytest


    @pytest.fixture
    def broken():
        raise RuntimeError("no database")


    def test_pass_one():
        assert True


    def test_pass_two():
        assert 1 + 1 == 2


    def test_fails():
        assert 1 == 2


    @pytest.mark.skip(reason="not today")
    def test_skipped():
        pass


    @pytest.mark.xfail(reason="known bug")
    def test_expected_to_fail():
        assert False


    @pytest.mark.xfail(reason="fixed already")
    def test_passes_unexpectedly():
        assert True


    def test_errors(broken):
        pass
    """
)
UNITTEST_TESTS = textwrap.dedent(
    """\
    import unittest


    class Mixed(unittest.TestCase):
        def test_pass(self):
            self.assertEqual(1, 1)

        def test_fail(self):
            self.assertEqual(1, 2)

        @unittest.skip("not today")
        def test_skipped(self):
            pass

        @unittest.expectedFailure
        def test_known_bug(self):
            self.assertEqual(1, 2)

        def test_error(self):
            raise RuntimeError("boom")
    """
)


def run_python(project: Path, *args: str) -> str:
    """Run this interpreter in `project` with no inherited pytest settings; stdout+stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the summary of pytest itself, quickly
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return completed.stdout + completed.stderr


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    project = tmp_path / "mixed"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")  # its own root, not looptui's config
    (project / "test_mixed.py").write_text(MIXED_TESTS)
    return project


def test_a_real_pytest_summary(mixed: Path) -> None:
    output = run_python(mixed, "-m", "pytest", "-p", "no:cacheprovider")
    assert "1 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error in" in output
    counts = parse_counts(output)
    assert counts == TestCounts(
        "pytest", passed=2, failed=1, errors=1, skipped=1, xfailed=1, xpassed=1
    )
    assert (counts.total, counts.not_run) == (7, 2)


def test_a_real_quiet_pytest_summary_with_deselected_tests(mixed: Path) -> None:
    output = run_python(
        mixed,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--deselect",
        "test_mixed.py::test_fails",
    )
    counts = parse_counts(output)
    assert counts == TestCounts(
        "pytest", passed=2, errors=1, skipped=1, xfailed=1, xpassed=1, deselected=1
    )
    assert (counts.total, counts.not_run) == (7, 3)


def test_real_pytest_runs_of_nothing(mixed: Path, tmp_path: Path) -> None:
    everything = run_python(mixed, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "nope")
    assert parse_counts(everything) == TestCounts("pytest", deselected=7)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "pytest.ini").write_text("[pytest]\n")
    nothing = run_python(empty, "-m", "pytest", "-p", "no:cacheprovider")
    assert "no tests ran" in nothing
    assert parse_counts(nothing) == TestCounts("pytest")


def test_a_real_pytest_collection_error(mixed: Path) -> None:
    (mixed / "test_broken.py").write_text("import no_such_module\n")
    output = run_python(mixed, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    counts = parse_counts(output)
    assert counts is not None
    # the broken module's tests are not collected: it counts as one error, not as its tests
    assert (counts.errors, counts.total) == (1, 1)


def test_a_real_unittest_summary(tmp_path: Path) -> None:
    (tmp_path / "test_mixed_unittest.py").write_text(UNITTEST_TESTS)
    output = run_python(tmp_path, "-m", "unittest", "test_mixed_unittest")
    assert "Ran 5 tests" in output
    assert parse_counts(output) == TestCounts(
        "unittest", passed=1, failed=1, errors=1, skipped=1, xfailed=1
    )


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "Ran 12 tests in 0.010s\n\nOK (skipped=2)\n",
            TestCounts("unittest", passed=10, skipped=2),
        ),
        (
            "......\nRan 12 tests in 1.5s\n\nFAILED (failures=1, skipped=1)\n",
            TestCounts("unittest", passed=10, failed=1, skipped=1),
        ),
        (
            "Test Suites: 1 failed, 2 passed, 3 total\n"
            "Tests:       1 failed, 2 skipped, 5 passed, 8 total\n"
            "Snapshots:   0 total\nTime:        1.2 s\n",
            TestCounts("jest", passed=5, failed=1, skipped=2),
        ),
        (
            " Test Files  1 failed | 2 passed (3)\n"
            "      Tests  1 failed | 5 passed | 2 skipped (8)\n"
            "   Start at  12:00:00\n",
            TestCounts("vitest", passed=5, failed=1, skipped=2),
        ),
        (
            "=== RUN   TestSum\n--- PASS: TestSum (0.00s)\n=== RUN   TestDiv\n"
            "=== RUN   TestDiv/by_zero\n    --- SKIP: TestDiv/by_zero (0.00s)\n"
            "--- FAIL: TestDiv (0.00s)\nFAIL\nFAIL\texample.com/calc\t0.002s\n",
            TestCounts("go", passed=1, failed=1, skipped=1),
        ),
        (
            "ok  \texample.com/calc\t0.002s\nFAIL\texample.com/calc/dates\t0.003s\n"
            "?   \texample.com/calc/cmd\t[no test files]\n",
            TestCounts("go packages", passed=1, failed=1, skipped=1),
        ),
        (
            "\x1b[32m==== \x1b[1m3 passed\x1b[0m\x1b[32m in 0.01s ====\x1b[0m\n",
            TestCounts("pytest", passed=3),
        ),
        ("Everything is fine.\nexit 0\n", None),
    ],
    ids=["unittest-ok", "unittest-failed", "jest", "vitest", "go-v", "go", "pytest-color", "none"],
)
def test_literal_summaries(output: str, expected: TestCounts | None) -> None:
    assert parse_counts(output) == expected


BASE = TestCounts("pytest", passed=10, skipped=1)


@pytest.mark.parametrize(
    ("head", "rules"),
    [
        (TestCounts("pytest", passed=10, skipped=1), []),
        (TestCounts("pytest", passed=12, skipped=1), []),  # new tests
        (TestCounts("pytest", passed=9, failed=1, skipped=1), []),  # a failure still counts
        (TestCounts("pytest", passed=9, skipped=1), [FEWER_TESTS]),
        (TestCounts("pytest", passed=9, skipped=2), [MORE_SKIPPED]),
        (TestCounts("pytest", passed=9, skipped=1, xfailed=1), [MORE_SKIPPED]),
        (TestCounts("pytest", passed=8, skipped=1, deselected=2), [MORE_SKIPPED]),
        (TestCounts("pytest", passed=5, skipped=2), [FEWER_TESTS, MORE_SKIPPED]),
        (TestCounts("unittest", passed=1), []),  # another runner's counts do not compare
    ],
)
def test_compare_counts(head: TestCounts, rules: list[str]) -> None:
    flags = compare_counts("tests", BASE, head)
    assert [flag.rule for flag in flags] == rules
    assert all(flag.path == "" and flag.line is None for flag in flags)
    assert all(flag.message.startswith("tests: ") for flag in flags)


def test_compare_counts_messages() -> None:
    head = TestCounts("pytest", passed=5, skipped=2)
    messages = [flag.message for flag in compare_counts("unit", BASE, head)]
    assert messages == [
        "unit: 7 tests collected, 11 on the base",
        "unit: 2 tests skipped, expected to fail or deselected, 1 on the base",
    ]
