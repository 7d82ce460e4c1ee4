"""The calculator project and diff builders shared by the tamper-guard tests: each cheat is a
commit in a real repository, read back as the verifier reads an iteration's change."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

from conftest import git, make_repo
from looptui.engine.models import Flag
from looptui.engine.verification import ONLY_TESTS, TamperPolicy, inspect_patch
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
    """The tamper guard's flags on the diff from `base` to `head`, read as the verifier reads it."""
    return inspect_patch(parse_patch(Repository(repo).review_diff(base, head)), policy)


def found(flags: list[Flag]) -> Found:
    """Each flag's rule, path and line, for comparing as a set."""
    return {(flag.rule, flag.path, flag.line) for flag in flags}


def line_of(text: str, needle: str) -> int:
    """The number of the one line of `text` holding `needle`."""
    numbers = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(numbers) == 1, f"{needle!r} is on lines {numbers}"
    return numbers[0]


def insert_before(text: str, needle: str, new: str) -> str:
    """`text` with `new` inserted before the one line holding `needle`."""
    lines = text.splitlines(keepends=True)
    index = line_of(text, needle) - 1
    return "".join([*lines[:index], new, *lines[index:]])


ONLY: Found = {(ONLY_TESTS, "", None)}


def make_project(tmp_path: Path) -> tuple[Path, str]:
    """The calculator repository and its first commit's id."""
    repo = make_repo(tmp_path / "calc", PROJECT)
    return repo, git(repo, "rev-parse", "HEAD").strip()
