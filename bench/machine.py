"""What machine a benchmark ran on, for the header of its results."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The processor's model name, as /proc/cpuinfo has it (or what Python knows)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor())


def header(script: str) -> str:
    """The first line of a benchmark's output: what ran, when, on which commit (and whether
    tracked files had changes), on what machine, with which Python and SQLite."""
    import os
    import sqlite3
    import subprocess
    import time

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"# bench/{script}, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n"
        f"commit {commit}{' (with uncommitted changes)' if dirty else ''}; "
        f"{os.cpu_count()} cores ({cpu_model()}); Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}"
    )
