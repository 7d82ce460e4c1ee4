"""The names of the tamper guard's rules: the `rule` of each `Flag` it raises."""

from __future__ import annotations

TEST_FILE_DELETED = "test-file-deleted"
TEST_REMOVED = "test-removed"
TEST_SKIPPED = "test-skipped"
TEST_XFAIL = "test-xfail"
TEST_DESELECTED = "test-deselected"
ASSERTION_REMOVED = "assertion-removed"
ASSERTION_WEAKENED = "assertion-weakened"
TEST_EDITED = "test-edited"
TEST_PATCHED = "test-patched"
TEST_SHADOW = "test-shadow"
TEST_CONFIG = "test-config"
PROTECTED = "protected"
ONLY_TESTS = "only-tests"
RUNNER_SHADOWED = "runner-shadowed"
RUNNER_TAMPERED = "runner-tampered"
