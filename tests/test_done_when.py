"""The issue's acceptance story, through the real `looptui` command in a real repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import cli_env, git, run_cli


def test_fix_loop_runs_merges_and_cleans_up(repo: Path) -> None:
    head_before = git(repo, "rev-parse", "HEAD")
    area_before = (repo / "shapes/area.py").read_bytes()

    result = run_cli(repo, "run", "fix")

    assert result.code == 0, result.stdout + result.stderr
    # the user's branch and checkout are untouched
    assert git(repo, "rev-parse", "HEAD") == head_before
    assert (repo / "shapes/area.py").read_bytes() == area_before
    assert git(repo, "status", "--porcelain") == ""

    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    assert run["status"] == "succeeded"
    assert run["iterations"] == 1
    assert run["branch"] == f"looptui/fix/{run['id']}"
    worktree = Path(run["worktree"])
    assert (worktree / "shapes/area.py").read_text().count("width * height") == 1
    assert run["base_commit"] == head_before.strip()
    assert run["started_at"] and run["finished_at"]
    assert run["last_verdict"]["done"] is True

    merged = run_cli(repo, "merge", run["id"][:4])
    assert merged.code == 0, merged.stderr
    assert "width * height" in (repo / "shapes/area.py").read_text()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert tests.returncode == 0, tests.stdout
    assert not worktree.exists()
    assert git(repo, "branch", "--list", run["branch"]) == ""
    assert str(worktree) not in git(repo, "worktree", "list")
    [after] = json.loads(run_cli(repo, "status", "--json").stdout)
    assert after["status"] == "merged"


def test_hopeless_loop_ends_within_budget_with_check_output_in_log(repo: Path) -> None:
    config = (repo / "looptui.toml").read_text().replace('agent = "fixer"', 'agent = "idle"')
    (repo / "looptui.toml").write_text(config)
    git(repo, "commit", "--quiet", "-am", "an agent that never fixes anything")

    result = run_cli(repo, "run", "fix")

    assert result.code == 1
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    assert run["status"] in ("failed", "stalled")
    assert run["iterations"] <= 3
    log = run_cli(repo, "log", run["id"])
    assert log.code == 0
    assert "assert 7 == 12" in log.stdout  # pytest's own words, from the check's output
    assert "thinking..." in log.stdout  # the agent's output
