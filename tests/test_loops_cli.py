"""`looptui loops`, `fire`, `pause`, `unpause` and `firings`, with the real command: through
the real service (whose scheduler fires a real interval trigger on the wall clock), and with
no service, where `fire` drives its run in the command's own process."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import make_repo, run_cli

pytestmark = pytest.mark.timeout(180)
T = TypeVar("T")
PY = sys.executable


def config(**tick: Any) -> dict[str, Any]:
    return {
        "agents": {"quick": {"kind": "command", "command": [PY, "-c", "print('working')"]}},
        "loops": {
            "tick": {
                "prompt": "Do it ({fired_by})",
                "agent": "quick",
                "max_iterations": 1,
                "triggers": [{"cron": "0 3 * * *", "name": "nightly"}],
                **tick,
            },
            "byhand": {"prompt": "Only by hand.", "agent": "quick", "max_iterations": 1},
        },
    }


def wait_for(read: Callable[[], T], holds: Callable[[T], bool], within: float = 60) -> T:
    deadline = time.monotonic() + within
    while True:
        value = read()
        if holds(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {within:g}s")
        time.sleep(0.05)


def firings(root: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(root, "firings", *args, "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.usefixtures("service")
def test_the_service_fires_an_interval_on_the_wall_clock_and_the_cli_sees_and_steers_it(
    tmp_path: Path,
) -> None:
    triggers = [{"every": "1s", "name": "often"}, {"cron": "0 3 * * *", "name": "nightly"}]
    root = make_repo(
        tmp_path / "repo",
        {"README.md": "hi\n"},
        config(triggers=triggers, policy={"overlap": "skip"}),
    )
    started = run_cli(root, "service", "start")
    assert started.code == 0, started.stderr
    # with no one at the keyboard, the interval fires and its firing starts a run
    ledger = wait_for(
        lambda: firings(root, "tick"), lambda f: any(x["outcome"] == "started" for x in f)
    )
    first = next(x for x in ledger if x["outcome"] == "started")
    assert first["trigger"] == "often" and first["run_id"]
    assert first["payload"]["fired_by"].startswith("every 1s")

    paused = run_cli(root, "pause", "tick", "often")
    assert (paused.code, paused.stdout.strip()) == (0, "paused tick: often")
    listed = run_cli(root, "loops")
    assert listed.code == 0 and "the service is not running" not in listed.stderr
    assert "often" in listed.stdout and "paused" in listed.stdout
    assert "byhand  no triggers: run by hand" in listed.stdout
    record = json.loads(run_cli(root, "loops", "--json").stdout)
    assert record["scheduled"] is True
    (tick,) = [loop for loop in record["loops"] if loop["name"] == "tick"]
    nightly = next(t for t in tick["triggers"] if t["name"] == "nightly")
    assert nightly["next_due_at"] > time.time() and nightly["overdue"] is False
    # paused: once the runs in flight settle, no firing is added
    count = len(
        wait_for(lambda: firings(root, "tick"), lambda f: all(x["outcome"] != "pending" for x in f))
    )
    assert len(firings(root, "tick")) <= count + 1

    # a restart keeps the schedule exactly
    assert run_cli(root, "service", "stop").code == 0
    assert run_cli(root, "service", "start").code == 0
    again = json.loads(run_cli(root, "loops", "--json").stdout)
    (tick_again,) = [loop for loop in again["loops"] if loop["name"] == "tick"]
    assert (
        next(t for t in tick_again["triggers"] if t["name"] == "nightly")["next_due_at"]
        == (nightly["next_due_at"])
    )
    assert next(t for t in tick_again["triggers"] if t["name"] == "often")["paused"] is True

    fired = run_cli(root, "fire", "byhand")
    assert fired.code == 0, fired.stderr
    assert fired.stdout.startswith("fired byhand (firing #") and "run " in fired.stdout
    unpaused = run_cli(root, "unpause", "tick")
    assert (unpaused.code, unpaused.stdout.strip()) == (0, "unpaused tick: often, nightly")


def test_with_no_service_fire_drives_its_run_and_loops_says_nothing_fires(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config())
    listed = run_cli(root, "loops")
    assert listed.code == 0
    assert "the looptui service is not running, so no trigger fires" in listed.stderr
    assert "not scheduled: no service has run" in listed.stdout

    fired = run_cli(root, "fire", "tick")
    assert fired.code == 0, fired.stderr
    lines = fired.stdout.splitlines()
    assert lines[0].startswith("fired tick (firing #1): starting run ")
    assert lines[-1].endswith("failed: goal not met after 1 iteration")
    (firing,) = firings(root, "tick")
    assert firing["outcome"] == "started" and firing["payload"] == {"fired_by": "looptui fire"}
    text = run_cli(root, "firings").stdout
    assert "tick" in text and "manual" in text and f"started run {firing['run_id']}" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fire", "nope"), "unknown loop 'nope' (loops in looptui.toml: byhand, tick)"),
        (("pause", "tick", "nope"), "loop tick has no trigger 'nope' (triggers: nightly)"),
        (("pause", "byhand"), "loop byhand has no triggers (triggers: none)"),
        (("firings", "nope"), "unknown loop 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config())
    result = run_cli(root, *args)
    assert result.code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_limit_below_one_is_refused(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config())
    result = run_cli(root, "firings", "--limit", "0")
    assert result.code == 2 and "Invalid value for '--limit'" in result.stderr


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            {"watch": ["docs/**/*.md"]},
            "loops.tick.triggers[0].watch: the glob 'docs/**/*.md' matches no file in the "
            "repository",
        ),
        ({"git": "mian"}, "loops.tick.triggers[0].git: no branch 'mian' in the repository"),
    ],
)
@pytest.mark.usefixtures("service")
def test_a_trigger_the_repository_cannot_serve_is_refused_and_nothing_starts(
    tmp_path: Path, trigger: dict[str, Any], message: str
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config(triggers=[trigger]))
    for args in (("run", "byhand"), ("fire", "tick"), ("service", "start")):
        result = run_cli(root, *args)
        assert result.code == 2, (args, result)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert run_cli(root, "service", "status").stdout.startswith("no looptui service")
    assert not list((root / ".git" / "looptui").glob("runs/*"))
