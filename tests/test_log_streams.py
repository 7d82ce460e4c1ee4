"""`looptui log` prints a run page by page, never holding all of it in memory."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env, make_repo
from looptui.engine.store import Store
from looptui.engine.workspace import Repository
from test_store import a_run

EVENTS = 200_000
PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.mark.timeout(600)  # Rich prints some 2,000 lines a second on a busy machine
async def test_log_of_a_huge_run_streams_in_little_memory(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"})
    path = Repository(root).store_path
    store = await Store.open(path)
    await store.insert_run(a_run("big"))
    await store.close()
    padding = "p" * 200  # 200,000 such lines are some 40 MB of text
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO events (run_id, iteration, ts, kind, data) VALUES (?, 1, 0, ?, ?)",
            (
                ("big", "output", json.dumps({"line": f"line {n} {padding}", "stream": "stdout"}))
                for n in range(EVENTS)
            ),
        )
    output = tmp_path / "log.txt"
    with output.open("w") as sink:
        # A fresh interpreter whose only child is `looptui log`: its children's peak RSS, as
        # the kernel counted it, is exactly that command's (no sampling that could miss it).
        measured = subprocess.run(
            [sys.executable, "-c", PEAK_OF_CHILD, sys.executable, "-m", "looptui", "log", "big"],
            cwd=root,
            env=cli_env(),
            stdout=sink,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=540,
        )
    assert measured.returncode == 0, measured.stderr
    peak = int(measured.stderr.strip().splitlines()[-1]) * 1024  # ru_maxrss is in KiB
    lines = [line for line in output.read_text().splitlines() if "│ line " in line]
    assert [int(line.split()[2]) for line in lines] == list(range(EVENTS))
    assert peak < 150 * 1024 * 1024, f"looptui log used {peak >> 20} MB"
