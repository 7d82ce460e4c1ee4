"""`looptui demo`: the quick start's first command, run as a new user would."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, run_cli


def test_the_demo_runs_its_loops_and_leaves_runs_to_review(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    result = run_cli(tmp_path, "demo", "--headless", "--speed", "1", str(demo))

    assert result.code == 0, result.stderr
    assert f"demo repository: {demo}" in result.stdout
    runs = {run["loop"]: run for run in json.loads(run_cli(demo, "status", "--json").stdout)}
    assert {loop: run["status"] for loop, run in runs.items()} == {
        "fix-add": "succeeded",
        "fix-mean": "succeeded",
        "docs": "succeeded",
        "speedup": "stalled",
    }
    assert runs["fix-mean"]["iterations"] == 2  # its first attempt failed the check
    assert git(demo, "status", "--porcelain") == ""

    merged = run_cli(demo, "merge", runs["fix-mean"]["id"], "--squash")
    assert merged.code == 0, merged.stderr
    assert "raise ValueError" in (demo / "calc/stats.py").read_text()


def test_the_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli(tmp_path, "demo", str(tmp_path))
    assert result.code == 2
    assert result.stderr.startswith("looptui: ") and "not empty" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_the_demo_refuses_a_speed_that_is_not_a_number_above_zero(tmp_path: Path) -> None:
    for speed in ("0", "-1", "nan", "inf"):
        demo = tmp_path / f"demo-{speed}"
        result = run_cli(tmp_path, "demo", "--headless", "--speed", speed, str(demo))
        assert result.code == 2, result
        assert "speed must be a number above 0" in result.stderr
        assert not demo.exists() or not any(demo.iterdir())  # nothing made
