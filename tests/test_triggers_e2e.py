"""The issue's own story, with `looptui serve` running in a temporary repository and no TUI
open: a touched file, a commit and an interval each start exactly one run, on time, and
`looptui firings` shows each with its run. Real service, real watcher, real git."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import git, make_repo, run_cli
from looptui.engine.workspace import Repository
from test_loops_cli import firings, wait_for

pytestmark = pytest.mark.timeout(180)
PY = sys.executable


def the_config() -> dict[str, Any]:
    def loop(trigger: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": "Go ({fired_by})",
            "agent": "quick",
            "max_iterations": 1,
            "triggers": [trigger],
        }

    return {
        "agents": {"quick": {"kind": "command", "command": [PY, "-c", "print('working')"]}},
        "loops": {
            "onfile": loop({"watch": ["src/*.py"], "debounce": "0.2s"}),
            "oncommit": loop({"git": "main"}),
            "ticker": loop({"every": "2s"}),
        },
    }


def runs_of(root: Path, loop: str) -> list[dict[str, Any]]:
    result = run_cli(root, "status", "--json")
    assert result.code == 0, result.stderr
    return [run for run in json.loads(result.stdout) if run["loop"] == loop]


@pytest.mark.usefixtures("service")
def test_a_file_a_commit_and_an_interval_each_start_one_run_with_no_window_open(
    tmp_path: Path,
) -> None:
    root = make_repo(
        tmp_path / "repo", {"README.md": "hi\n", "src/app.py": "x = 1\n"}, the_config()
    )
    assert run_cli(root, "service", "start").code == 0

    touched = root / "src" / "app.py"
    touched.write_text("x = 2\n")
    touched_at = os.stat(touched).st_mtime
    (file_firing,) = wait_for(
        lambda: firings(root, "onfile"), lambda f: f and f[0]["outcome"] == "started"
    )
    (file_run,) = wait_for(lambda: runs_of(root, "onfile"), bool)
    assert file_firing["payload"]["changed_paths"] == ["src/app.py"]
    assert file_run["id"] == file_firing["run_id"]
    # from the file's change to the start of its run's first agent turn, as the store says
    with sqlite3.connect(Repository(root).store_path) as db:
        (turn_at,) = db.execute(
            "SELECT started_at FROM iterations WHERE run_id = ? AND number = 1",
            (file_run["id"],),
        ).fetchone()
    assert turn_at - touched_at < 1.0, turn_at - touched_at

    (root / "notes.txt").write_text("a note\n")  # outside src/: no watch fires for it
    git(root, "add", "notes.txt")
    git(root, "commit", "-q", "-m", "a commit made outside looptui")
    tip = git(root, "rev-parse", "HEAD").strip()
    (commit_firing,) = wait_for(lambda: firings(root, "oncommit"), lambda f: f and f[0]["run_id"])
    assert commit_firing["payload"]["commit"]["sha"] == tip

    ticks = wait_for(
        lambda: firings(root, "ticker"),
        lambda f: sum(t["outcome"] == "started" for t in f) >= 3,
        within=90,
    )
    started = [t for t in reversed(ticks) if t["outcome"] == "started"][:3]
    for tick in started:  # each on time, each with its run
        assert tick["run_id"] and tick["fired_at"] - tick["due_at"] < 1.0
    gaps = [round(b["due_at"] - a["due_at"], 3) for a, b in itertools.pairwise(started)]
    assert gaps == [2.0, 2.0]

    # two ticks later, the file and the commit still have had exactly one run each
    seen = len(firings(root, "ticker"))
    wait_for(lambda: firings(root, "ticker"), lambda f: len(f) >= seen + 2, within=90)
    assert len(runs_of(root, "onfile")) == 1 and len(firings(root, "onfile")) == 1
    assert len(runs_of(root, "oncommit")) == 1 and len(firings(root, "oncommit")) == 1

    shown = run_cli(root, "firings").stdout
    for firing in (file_firing, commit_firing, *started):
        assert f"started run {firing['run_id']}" in shown
    assert run_cli(root, "service", "stop").code == 0
