"""Verification: what decides "done" besides the agent's word — the clean gate, the tamper guard."""

from looptui.engine.verification.families import FAMILIES, RunnerFamily, SectionedConfig, glob_match
from looptui.engine.verification.tamper import (
    ASSERTION_REMOVED,
    ASSERTION_WEAKENED,
    ONLY_TESTS,
    PROTECTED,
    TEST_CONFIG,
    TEST_DESELECTED,
    TEST_FILE_DELETED,
    TEST_REMOVED,
    TEST_SKIPPED,
    TEST_XFAIL,
    TamperPolicy,
    inspect_patch,
)
from looptui.engine.verification.test_counts import (
    FEWER_TESTS,
    MORE_SKIPPED,
    TestCounts,
    compare_counts,
    parse_counts,
)

__all__ = [
    "ASSERTION_REMOVED",
    "ASSERTION_WEAKENED",
    "FAMILIES",
    "FEWER_TESTS",
    "MORE_SKIPPED",
    "ONLY_TESTS",
    "PROTECTED",
    "TEST_CONFIG",
    "TEST_DESELECTED",
    "TEST_FILE_DELETED",
    "TEST_REMOVED",
    "TEST_SKIPPED",
    "TEST_XFAIL",
    "RunnerFamily",
    "SectionedConfig",
    "TamperPolicy",
    "TestCounts",
    "compare_counts",
    "glob_match",
    "inspect_patch",
    "parse_counts",
]
