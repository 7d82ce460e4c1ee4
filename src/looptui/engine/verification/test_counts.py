"""The denominator guard: how many tests a check's runner collected, skipped and ran.

A suite can be made to pass by running less of it. The runner's own summary in a check's
output (pytest's last line, unittest's "Ran N tests", jest's and vitest's "Tests:" line, go
test's verdict lines) says how many tests there were; `compare_counts` flags a head that
collects fewer than the base, or skips more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from looptui.engine.models import Flag

FEWER_TESTS = "fewer-tests"
MORE_SKIPPED = "more-skipped"
NO_SUMMARY = "no-test-summary"  # the runner reported its tests on the base, not any more

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class TestCounts:
    """What one runner's summary counted. `runner` names the summary read, since counts from
    different runners (go's packages and go's tests, say) do not compare."""

    __test__ = False  # not a pytest test class, whatever its name

    runner: str
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    deselected: int = 0

    @property
    def total(self) -> int:
        """Every test collected, whether it ran, was skipped, expected to fail or deselected."""
        return (
            self.passed
            + self.failed
            + self.errors
            + self.skipped
            + self.xfailed
            + self.xpassed
            + self.deselected
        )

    @property
    def not_run(self) -> int:
        """Tests collected but kept from counting: skipped, expected to fail, deselected."""
        return self.skipped + self.xfailed + self.deselected


def parse_counts(output: str) -> TestCounts | None:
    """The counts in the last summary a known runner printed in `output`, or None.

    Runners are tried in turn (pytest, unittest, jest, vitest, go test); the first one whose
    summary is found wins.
    """
    lines = _ANSI.sub("", output).replace("\r", "\n").splitlines()
    for reader in _READERS:
        counts = reader(lines)
        if counts is not None:
            return counts
    return None


def missing_summary(check_name: str, base: TestCounts) -> Flag:
    """The flag for a check whose runner summed up its tests on the base but not on the head:
    the suite was cut short (an `os._exit(0)` in the code, a runner replaced)."""
    return Flag(
        NO_SUMMARY,
        "",
        None,
        f"{check_name}: the {base.runner} summary of its {base.total} tests on the base is "
        "missing from its output",
    )


def compare_counts(check_name: str, base: TestCounts, head: TestCounts) -> list[Flag]:
    """Flags for a head that collects fewer tests than the base, or keeps more from running.

    Counts read from different runners' summaries are not compared.
    """
    if base.runner != head.runner:
        return []
    flags: list[Flag] = []
    if head.total < base.total:
        message = f"{check_name}: {head.total} tests collected, {base.total} on the base"
        flags.append(Flag(FEWER_TESTS, "", None, message))
    if head.not_run > base.not_run:
        message = (
            f"{check_name}: {head.not_run} tests skipped, expected to fail or deselected,"
            f" {base.not_run} on the base"
        )
        flags.append(Flag(MORE_SKIPPED, "", None, message))
    return flags


# -- pytest ----------------------------------------------------------------------------------

_PYTEST_SUMMARY = re.compile(
    r"^=*\s*(?P<body>no tests ran|\d+ \w+(?:, \d+ \w+)*)\s+in\s+[\d.]+\s*s\b.*?=*\s*$"
)
_PYTEST_COUNT = re.compile(r"(\d+) (\w+)")
_PYTEST_WORDS = {
    "passed": "passed",
    "failed": "failed",
    "error": "errors",
    "errors": "errors",
    "skipped": "skipped",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
    "deselected": "deselected",
}


def _pytest(lines: list[str]) -> TestCounts | None:
    for line in reversed(lines):
        match = _PYTEST_SUMMARY.match(line.strip())
        if match is None:
            continue
        counts: dict[str, int] = {}
        for number, word in _PYTEST_COUNT.findall(match["body"]):
            field = _PYTEST_WORDS.get(word)  # "warnings" and "rerun" count no test
            if field is not None:
                counts[field] = counts.get(field, 0) + int(number)
        return TestCounts("pytest", **counts)
    return None


# -- unittest --------------------------------------------------------------------------------

_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in [\d.]+s$")
_UNITTEST_RESULT = re.compile(r"^(OK|FAILED)(?: \((?P<details>[^)]*)\))?$")
_UNITTEST_WORDS = {
    "failures": "failed",
    "errors": "errors",
    "skipped": "skipped",
    "expected failures": "xfailed",
    "unexpected successes": "xpassed",
}


def _unittest(lines: list[str]) -> TestCounts | None:
    for index in range(len(lines) - 1, -1, -1):
        ran = _UNITTEST_RAN.match(lines[index].strip())
        if ran is None:
            continue
        counts = {"failed": 0, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}
        for line in lines[index + 1 :]:
            result = _UNITTEST_RESULT.match(line.strip())
            if result is not None:
                for part in (result["details"] or "").split(","):
                    word, _, number = part.strip().partition("=")
                    if word in _UNITTEST_WORDS and number.isdigit():
                        counts[_UNITTEST_WORDS[word]] = int(number)
                break
        passed = int(ran[1]) - sum(counts.values())
        return TestCounts("unittest", passed=max(passed, 0), **counts)
    return None


# -- jest and vitest -------------------------------------------------------------------------

_JEST_TESTS = re.compile(r"^Tests:\s+(?P<body>.*?),?\s*(?P<total>\d+) total$")
_VITEST_TESTS = re.compile(r"^Tests\s+(?P<body>.+?)\s*\((?P<total>\d+)\)$")
_JS_WORDS = {
    "passed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "todo": "skipped",
    "pending": "skipped",
    "expected fail": "xfailed",
}


def _jest(lines: list[str]) -> TestCounts | None:
    return _js_summary(lines, _JEST_TESTS, ",", "jest")


def _vitest(lines: list[str]) -> TestCounts | None:
    return _js_summary(lines, _VITEST_TESTS, "|", "vitest")


def _js_summary(
    lines: list[str], pattern: re.Pattern[str], separator: str, runner: str
) -> TestCounts | None:
    for line in reversed(lines):
        match = pattern.match(line.strip())
        if match is None:
            continue
        counts: dict[str, int] = {}
        for part in match["body"].split(separator):
            number, _, word = part.strip().partition(" ")
            field = _JS_WORDS.get(word.strip())
            if field is not None and number.isdigit():
                counts[field] = counts.get(field, 0) + int(number)
        # what the words do not cover (a runner's own kinds) still counts as collected
        rest = int(match["total"]) - sum(counts.values())
        return TestCounts(runner, **counts, errors=max(rest, 0))
    return None


# -- go test ---------------------------------------------------------------------------------

_GO_TEST = re.compile(r"^\s*--- (PASS|FAIL|SKIP): \S+")
_GO_PACKAGE = re.compile(r"^(ok|FAIL|\?)\s+\S+\s")


def _go(lines: list[str]) -> TestCounts | None:
    """Each `--- PASS/FAIL/SKIP` line (with -v) is a test, subtests included; without them,
    the package lines are all there is to count."""
    verdicts = [match[1] for match in map(_GO_TEST.match, lines) if match is not None]
    if verdicts:
        return TestCounts(
            "go",
            passed=verdicts.count("PASS"),
            failed=verdicts.count("FAIL"),
            skipped=verdicts.count("SKIP"),
        )
    packages = [match[1] for match in map(_GO_PACKAGE.match, lines) if match is not None]
    if packages:
        return TestCounts(
            "go packages",
            passed=packages.count("ok"),
            failed=packages.count("FAIL"),
            skipped=packages.count("?"),
        )
    return None


_READERS: tuple[Callable[[list[str]], TestCounts | None], ...] = (
    _pytest,
    _unittest,
    _jest,
    _vitest,
    _go,
)
