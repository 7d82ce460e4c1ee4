"""`looptui demo`: the quick start's first command, run as a new user would."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from conftest import PYTHON_BIN, cli_env, git, run_cli
from looptui.demo import DEMO_MARKER, REPLAYS, WATCHABLE_SPEED
from looptui.engine.evaluator_agent import parse_verdict
from looptui.engine.workspace import Repository
from tui_support import demo_repository, open_app

# How many iterations each loop's run takes (the real run below checks it), and the loop
# whose last iteration an evaluator judges after its checks pass.
ITERATIONS = {"fix-add": 1, "fix-mean": 2, "docs": 1, "speedup": 2}
EVALUATED = {"fix-mean": "reviewer"}


def _turn(steps: list[dict[str, Any]], iteration: int) -> list[float]:
    """The times of a turn's steps, at speed 1 (as the replay agent selects them)."""

    def applies(step: dict[str, Any]) -> bool:
        wanted = step.get("iteration")
        return wanted is None or iteration in (wanted if isinstance(wanted, list) else [wanted])

    return [step.get("at", 0.0) for step in steps if applies(step)]


def scripted_work(loop: str) -> list[float]:
    """When each of a run's visible steps comes, in seconds watched, its turns one after the
    other: a lower bound, since the checks and commits between them take time too."""
    times: list[float] = []
    start = 0.0
    turns = [(loop, i) for i in range(1, ITERATIONS[loop] + 1)]
    if loop in EVALUATED:
        turns.append((EVALUATED[loop], ITERATIONS[loop]))
    for agent, iteration in turns:
        turn = [at / WATCHABLE_SPEED for at in _turn(REPLAYS[agent], iteration)]
        times += [start + at for at in turn]
        start += max(turn)
    return times


def test_watched_the_demo_keeps_several_agents_visibly_at_work_for_about_a_minute() -> None:
    work = {loop: scripted_work(loop) for loop in ITERATIONS}
    # after ten seconds at least three runs are still at work (all four, in fact)
    assert sum(times[-1] > 10 for times in work.values()) >= 3, work
    # something new shows on each card every few seconds while its run works
    for loop, times in work.items():
        gaps = [later - earlier for earlier, later in zip([0.0, *times], times, strict=False)]
        assert max(gaps) <= 6, (loop, gaps)
    # about a minute in all: the longest story is not over before 50 s, and over by 80 s
    assert 50 <= max(times[-1] for times in work.values()) <= 80, work
    # two runs are still going at half a minute
    assert sum(times[-1] > 30 for times in work.values()) >= 2, work


def test_the_demo_evaluator_cites_lines_that_hold_in_the_fixed_code(tmp_path: Path) -> None:
    repo, _config = demo_repository(tmp_path / "demo")
    for step in REPLAYS["fix-mean"]:  # the fix, both iterations' edits
        if "edit" in step:
            edit = step["edit"]
            target = repo / edit["path"]
            target.write_text(target.read_text().replace(edit["old"], edit["new"]))
    answer = next(step["message"] for step in REPLAYS["reviewer"] if "message" in step)
    verdict = parse_verdict(answer, "reviewer", repo)
    assert verdict.done and not verdict.flags
    assert "cites calc/stats.py:3" in verdict.reasons


def test_the_demo_runs_its_loops_and_leaves_runs_to_review(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    speed = 1.0  # ten times as fast as watched: ten seconds watched is one here
    result = run_cli(tmp_path, "demo", "--headless", "--speed", str(speed), str(demo))

    assert result.code == 0, result.stderr
    assert f"demo repository: {demo}" in result.stdout
    runs = {run["loop"]: run for run in json.loads(run_cli(demo, "status", "--json").stdout)}
    assert {loop: run["status"] for loop, run in runs.items()} == {
        "fix-add": "succeeded",
        "fix-mean": "succeeded",
        "docs": "succeeded",
        "speedup": "stalled",
    }
    assert "did not change for 2 iterations" in runs["speedup"]["error"]  # why, in words
    assert {loop: run["iterations"] for loop, run in runs.items()} == ITERATIONS
    # the replays say what a model would have spent, so the demo shows costs as they grow
    assert runs["fix-add"]["usage"] == pytest.approx(
        {"input_tokens": 18_400, "output_tokens": 1_150, "cost_usd": 0.0725}
    )
    assert all(run["usage"]["cost_usd"] > 0 for run in runs.values())
    table = run_cli(demo, "status").stdout
    assert f"{runs['speedup']['id']}  speedup  stalled  2/4 iterations  no change" in table
    assert "  why       the diff did not change for 2 iterations" in table  # a stall, no error
    assert git(demo, "status", "--porcelain") == ""
    with sqlite3.connect(Repository(demo).store_path) as db:
        evaluators = {
            loop: evaluator
            for loop, evaluator in db.execute(
                "SELECT runs.loop, verdicts.evaluator FROM verdicts JOIN runs "
                "ON runs.id = verdicts.run_id WHERE verdicts.done"
            )
        }
        spans = list(db.execute("SELECT loop, started_at, finished_at FROM runs"))
    assert evaluators["fix-mean"] == "reviewer"  # fix-mean's check passed, then it judged
    # measured by the engine's own clock: ten watched seconds in, three runs were at work
    ten_seconds = min(start for _, start, _ in spans) + 10 * WATCHABLE_SPEED / speed
    working = [loop for loop, start, end in spans if start <= ten_seconds < end]
    assert len(working) >= 3, spans

    merged = run_cli(demo, "merge", runs["fix-mean"]["id"], "--squash")
    assert merged.code == 0, merged.stderr
    assert "raise ValueError" in (demo / "calc/stats.py").read_text()


def test_the_demo_closing_hint_works_as_written_without_the_venv_on_path(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    result = run_cli(tmp_path, "demo", "--headless", "--speed", "50", str(demo))
    assert result.code == 0, result.stderr
    hint = next(line for line in result.stdout.splitlines() if line.startswith("explore it: "))
    command = hint.removeprefix("explore it: ")
    words = shlex.split(command)
    assert words[:3] == ["cd", str(demo), "&&"] and len(words) == 4, command
    # what the quick start leaves: a shell whose PATH has no venv in it
    env = {**cli_env(), "PATH": os.pathsep.join(["/usr/bin", "/bin"])}
    assert PYTHON_BIN not in env["PATH"]
    # the printed command, run by a shell elsewhere; `status` instead of opening the app
    shown = subprocess.run(
        ["/bin/sh", "-c", f"{command} status --json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert {run["loop"] for run in json.loads(shown.stdout)} == set(ITERATIONS)
    review = next(line for line in result.stdout.splitlines() if line.startswith("review a run"))
    assert f"{words[3]} diff " in review  # the other hints name the same command


async def test_the_app_shows_where_the_demo_repository_is(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, _pilot):
        where = app.screen.query_one("#where", Static)
        text = f"demo repository: {repo}"
        assert str(where.render()) == text
        # on screen whole at 80x24, under the title: this long a path folds onto two lines
        assert where.region.y == 1 and where.region.height == 2, where.region
        assert (where.region.width - 2) * 2 >= len(text) > where.region.width - 2
    (repo / DEMO_MARKER).unlink()  # not the demo's any more: nothing to say
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, _pilot):
        assert not app.screen.query("#where")


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
