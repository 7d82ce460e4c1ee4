"""Agents and checks left running by a looptui process that was killed are stopped later."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import cli_env, make_repo, run_cli
from looptui.engine.models import RunStatus
from looptui.engine.process import WORKTREE_VARIABLE
from looptui.engine.store import Store
from test_bad_input import alive, wait_for
from test_store import a_run

SLEEPER = textwrap.dedent(
    """\
    import os, subprocess, sys, time
    child = subprocess.Popen(["sleep", "120"])
    with open(sys.argv[1] + ".tmp", "w") as handle:
        handle.write(f"{os.getpid()} {child.pid}")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    print("working", flush=True)
    time.sleep(120)
    """
)


def a_dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def start_sleeper(tmp_path: Path, worktree: str, name: str) -> tuple[subprocess.Popen[str], int]:
    script, pids = tmp_path / "sleeper.py", tmp_path / f"{name}.pids"
    script.write_text(SLEEPER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(pids)],
        env={**os.environ, WORKTREE_VARIABLE: worktree},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    wait_for(pids.exists, 30, "the sleeper to start")
    _, child = map(int, pids.read_text().split())
    return process, child


async def test_marking_a_run_interrupted_kills_only_that_runs_processes(tmp_path: Path) -> None:
    orphan, orphan_child = start_sleeper(tmp_path, str(tmp_path / "wt-lost"), "lost")
    bystander, bystander_child = start_sleeper(tmp_path, str(tmp_path / "wt-other"), "other")
    try:
        store = await Store.open(tmp_path / "s.db")
        run = a_run("lost", status=RunStatus.RUNNING, worktree=str(tmp_path / "wt-lost"))
        await store.insert_run(run)
        await store.update_run("lost", owner_pid=a_dead_pid())
        assert await store.mark_interrupted() == ["lost"]
        await store.close()
        orphan.wait(timeout=10)
        wait_for(lambda: not alive(orphan_child), 10, "the orphan's child to die")
        assert orphan.returncode == -signal.SIGKILL
        assert bystander.poll() is None and alive(bystander_child)
    finally:
        for process in (orphan, bystander):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_agent_of_a_looptui_killed_with_sigkill_is_stopped_by_the_next_command(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "agent.pids"
    config = {
        "agents": {"slow": {"kind": "command", "command": ["python", "sleeper.py", str(pids)]}},
        "loops": {"slow": {"prompt": "wait", "agent": "slow", "max_iterations": 1}},
    }
    repo = make_repo(tmp_path / "repo", {"sleeper.py": SLEEPER}, config)
    looptui = subprocess.Popen(
        [sys.executable, "-m", "looptui", "run", "slow"],
        cwd=repo,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent = child = 0
    try:
        wait_for(lambda: pids.exists() or looptui.poll() is not None, 30, "the agent")
        agent, child = map(int, pids.read_text().split())
        looptui.kill()  # SIGKILL: no handler runs, the agent's process group lives on
        looptui.wait()
        assert alive(agent) and alive(child)

        [run] = json.loads(run_cli(repo, "status", "--json").stdout)

        assert run["status"] == "interrupted"
        wait_for(lambda: not alive(agent) and not alive(child), 10, "the agent to die")
    finally:
        if looptui.poll() is None:
            looptui.kill()
            looptui.wait()
        for pid in (agent, child):  # whatever the outcome, nothing is left sleeping
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
