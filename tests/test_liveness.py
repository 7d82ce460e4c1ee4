"""A run is alive only while its own process is; what a run started dies with its turn; an
agent that cannot start says so at once."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from conftest import cli_env, make_repo, run_cli
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.agents import Finished, build_agent
from looptui.engine.config import CONFIG_NAME, AgentConfig
from looptui.engine.store import Store
from looptui.engine.workspace import Repository
from test_bad_input import alive, wait_for
from test_floods import a_task, collect
from test_store import a_run

PY = sys.executable


async def test_a_run_whose_pid_was_reused_by_another_process_is_interrupted(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"})
    stranger = subprocess.Popen(["sleep", "120"])
    try:
        store = await Store.open(Repository(root).store_path)
        await store.insert_run(a_run("reused", status=RunStatus.RUNNING))
        started = psutil.Process(stranger.pid).create_time()
        # as if the run's looptui had this pid and died, and the pid went to `sleep`
        await store.update_run("reused", owner_pid=stranger.pid, owner_started=started - 100)
        await store.insert_run(a_run("mine", status=RunStatus.RUNNING))  # this process: alive
        await store.close()

        runs = {run["id"]: run for run in json.loads(run_cli(root, "status", "--json").stdout)}

        assert runs["reused"]["status"] == "interrupted"
        assert runs["mine"]["status"] == "running"
        assert stranger.poll() is None  # an unrelated process is never touched
    finally:
        stranger.kill()
        stranger.wait()


DAEMON = textwrap.dedent(
    """\
    import os, subprocess, sys
    keep_pipes = sys.argv[2] == "keep-pipes"
    quiet = {{}} if keep_pipes else dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = subprocess.Popen(["sleep", "300"], start_new_session=True, **quiet)
    with open(sys.argv[1] + ".tmp", "w") as handle:
        handle.write(str(daemon.pid))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    print("started a daemon", flush=True)
    """
)


@pytest.mark.parametrize("pipes", ["keep-pipes", "close-pipes"])
async def test_a_daemon_that_escaped_the_agents_session_dies_with_the_turn(
    tmp_path: Path, pipes: str
) -> None:
    pid_file = tmp_path / "daemon.pid"
    command = ["python", "daemon.py", str(pid_file), pipes]
    config = {
        "agents": {"daemon": {"kind": "command", "command": command}},
        "loops": {"d": {"prompt": "go", "agent": "daemon", "max_iterations": 1}},
    }
    root = make_repo(tmp_path / "repo", {"daemon.py": DAEMON.format()}, config)
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    daemon = 0
    try:
        run = await engine.start_run("d")
        started = time.monotonic()
        await engine.wait(run.id)
        assert time.monotonic() - started < 30
        daemon = int(pid_file.read_text())
        wait_for(lambda: not alive(daemon), 10, "the daemon to die")
    finally:
        await engine.close()
        if daemon:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon, signal.SIGKILL)


async def test_an_agent_failing_at_once_with_an_error_cannot_start(tmp_path: Path) -> None:
    script = "import sys; print('error: no API key set', file=sys.stderr); sys.exit(1)"
    events = await collect((PY, "-c", script), a_task(tmp_path), 30)
    assert events[-1] == Finished(
        ok=False, message="error: no API key set", exit_code=1, cannot_start=True
    )


async def test_a_binary_that_is_not_executable_cannot_start(tmp_path: Path) -> None:
    binary = tmp_path / "agent"
    binary.write_text("#!/bin/sh\necho hi\n")
    binary.chmod(0o644)
    agent = build_agent(AgentConfig(name="x", kind="command", command=(str(binary),)))
    events = [event async for event in agent.run(a_task(tmp_path))]
    final = events[-1]
    assert isinstance(final, Finished) and final.cannot_start and not final.ok
    assert final.message == f"cannot start {binary}: Permission denied"


@pytest.mark.parametrize(
    "script",
    [
        # it did something before failing: another turn may do better
        "import sys; print('working'); sys.exit(1)",
        "import pathlib, sys; pathlib.Path('new.txt').write_text('x');"
        " print('error: oops', file=sys.stderr); sys.exit(1)",
        # it failed without a word
        "import sys; sys.exit(1)",
    ],
)
async def test_an_agent_that_started_and_failed_can_try_again(tmp_path: Path, script: str) -> None:
    task = a_task(tmp_path)
    subprocess.run(["git", "init", "--quiet", str(task.worktree)], check=True)
    events = await collect((PY, "-c", script), task, 30)
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and not final.cannot_start


@pytest.mark.parametrize(
    ("script", "cannot_start"),
    [
        ("import sys; print('error: no API key set', file=sys.stderr); sys.exit(1)", True),
        # it wrote a file, or committed, before failing: it started
        (
            "import pathlib, sys; pathlib.Path('new.txt').write_text('x');"
            " print('error: oops', file=sys.stderr); sys.exit(1)",
            False,
        ),
        (
            "import subprocess, sys; subprocess.run(['git', 'commit', '-q', '--allow-empty',"
            " '-m', 'x'], check=True); print('error: oops', file=sys.stderr); sys.exit(1)",
            False,
        ),
    ],
)
async def test_in_a_fresh_checkout_the_agent_is_judged_without_a_look_before_it_starts(
    tmp_path: Path, script: str, cannot_start: bool
) -> None:
    task = a_task(tmp_path)
    make_repo(task.worktree, {"README.md": "hi\n"})
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=task.worktree, capture_output=True, text=True, check=True
    ).stdout.strip()
    events = await collect((PY, "-c", script), dataclasses.replace(task, fresh_at=head), 30)
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok
    assert final.cannot_start is cannot_start
