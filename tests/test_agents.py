"""The command and replay agents, run for real: process groups, prompts, scripts, confinement."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from looptui.engine.agents import AgentTask, Finished, OutputLine, ToolResult, build_agent
from looptui.engine.agents.base import AgentEvent, Usage
from looptui.engine.agents.prompt_files import prompt_dir
from looptui.engine.agents.replay import load_script
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable


def task(
    tmp_path: Path, prompt: str = "fix it; rm -rf / `x` $(y)", iteration: int = 1
) -> AgentTask:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    return AgentTask("r1", iteration, worktree, prompt, tmp_path / "scratch", dict(os.environ))


async def collect(config: AgentConfig, agent_task: AgentTask) -> list[AgentEvent]:
    return [event async for event in build_agent(config).run(agent_task)]


def command(*argv: str) -> AgentConfig:
    return AgentConfig(name="cmd", kind="command", command=argv)


ECHO_ARGS = "import sys; print(repr(sys.argv[1:]))"


@pytest.mark.parametrize("via", ["arg", "file", "stdin"])
async def test_the_prompt_reaches_the_command_verbatim_and_never_through_a_shell(
    tmp_path: Path, via: str
) -> None:
    the_task = task(tmp_path)
    argv = {
        "arg": (sys.executable, "-c", ECHO_ARGS, "--message={prompt}"),
        "file": (
            sys.executable,
            "-c",
            "import sys; print(open(sys.argv[1]).read())",
            "{prompt_file}",
        ),
        "stdin": (sys.executable, "-c", "import sys; print(sys.stdin.read())"),
    }[via]
    events = await collect(command(*argv), the_task)
    lines = [e.text for e in events if isinstance(e, OutputLine)]
    expected = repr(["--message=" + the_task.prompt]) if via == "arg" else the_task.prompt
    assert lines[0] == expected
    assert events[-1] == Finished(ok=True, message=expected, exit_code=0)
    if via == "file":
        assert not list(the_task.worktree.iterdir())  # the prompt file is not in the worktree
        assert not list(prompt_dir().iterdir())  # and it is gone after the turn


async def test_a_failing_command_counts_as_a_failed_turn(tmp_path: Path) -> None:
    events = await collect(command(sys.executable, "-c", "import sys; sys.exit(3)"), task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and final.exit_code == 3


async def test_cancel_kills_the_whole_process_group_and_reaps_it(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time, pathlib\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"pathlib.Path({str(pids)!r}).write_text(f'{{os.getpid()}} {{child.pid}}')\n"
        "print('working', flush=True)\n"
        "time.sleep(60)\n"
    )
    agent = build_agent(command(sys.executable, "-c", script))

    async def consume() -> None:
        async for _ in agent.run(task(tmp_path)):
            pass

    running = asyncio.create_task(consume())
    for _ in range(200):
        if pids.exists() and pids.read_text():
            break
        await asyncio.sleep(0.05)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    leader, child = map(int, pids.read_text().split())
    with pytest.raises(ProcessLookupError):
        os.kill(leader, 0)  # gone and reaped by us: a zombie would still answer
    assert wait_until_gone(child)  # killed; being orphaned, it is reaped by init


def wait_until_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


async def test_a_background_child_cannot_hold_the_turn_open(tmp_path: Path) -> None:
    script = "import subprocess; subprocess.Popen(['sleep', '60']); print('bye')"
    events = await asyncio.wait_for(
        collect(command(sys.executable, "-c", script), task(tmp_path)), timeout=10
    )
    assert isinstance(events[-1], Finished) and events[-1].ok


async def test_a_missing_binary_is_reported_before_anything_starts(tmp_path: Path) -> None:
    agent = build_agent(command("no-such-agent-binary-xyz", "{prompt}"))
    with pytest.raises(AgentUnavailable, match="no-such-agent-binary-xyz"):
        agent.preflight(os.environ, tmp_path)


def replay(tmp_path: Path, steps: list[object], speed: float = 0) -> AgentConfig:
    script = tmp_path / "script.jsonl"
    script.write_text("\n".join(json.dumps(step) for step in steps))
    return AgentConfig(name="replay", kind="replay", script=script, speed=speed)


async def test_replay_plays_its_steps_for_the_current_iteration(tmp_path: Path) -> None:
    config = replay(
        tmp_path,
        [
            {"log": "always"},
            {"iteration": 2, "log": "only second"},
            {"write": {"path": "pkg/new.py", "content": "x = 1\n"}},
            {"edit": {"path": "pkg/new.py", "old": "x = 1", "new": "x = 2"}},
            {"message": "done"},
        ],
    )
    events = await collect(config, task(tmp_path, iteration=1))
    assert [e.text for e in events if isinstance(e, OutputLine)] == ["always"]
    assert (tmp_path / "wt/pkg/new.py").read_text() == "x = 2\n"
    assert events[-1] == Finished(ok=True, message="done", exit_code=0)


async def test_replay_keeps_time(tmp_path: Path) -> None:
    config = replay(tmp_path, [{"at": 0.3, "log": "late"}, {"message": "done"}], speed=1)
    started = asyncio.get_running_loop().time()
    await collect(config, task(tmp_path))
    assert asyncio.get_running_loop().time() - started >= 0.3


@pytest.mark.parametrize("path", ["../outside.txt", "/tmp/outside.txt", "link/x.txt"])
async def test_replay_cannot_write_outside_its_worktree(tmp_path: Path, path: str) -> None:
    the_task = task(tmp_path)
    os.symlink(tmp_path, the_task.worktree / "link")
    config = replay(tmp_path, [{"write": {"path": path, "content": "escaped"}}])
    events = await collect(config, the_task)
    assert any(isinstance(e, ToolResult) and e.is_error for e in events)
    assert isinstance(events[-1], Finished) and not events[-1].ok
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "x.txt").exists()


async def test_replay_runs_share_a_parsed_script_until_it_changes(tmp_path: Path) -> None:
    config = replay(tmp_path, [{"log": "first"}, {"message": "done"}])
    assert config.script is not None
    assert load_script(config.script) is load_script(config.script)  # one copy for many runs
    config.script.write_text(json.dumps({"log": "edited between runs"}) + "\n")
    events = await collect(config, task(tmp_path))
    assert [e.text for e in events if isinstance(e, OutputLine)] == ["edited between runs"]


async def test_replay_reports_what_it_spent(tmp_path: Path) -> None:
    config = replay(
        tmp_path,
        [
            {"usage": {"input_tokens": 900, "output_tokens": 40, "cost_usd": 0.01}},
            {"usage": {"cost_usd": 2}},
            {"message": "done"},
        ],
    )
    events = await collect(config, task(tmp_path))
    assert [e for e in events if isinstance(e, Usage)] == [Usage(900, 40, 0.01), Usage(0, 0, 2)]


@pytest.mark.parametrize(
    "usage",
    [
        {},
        {"tokens": 5},
        {"input_tokens": -1},
        {"input_tokens": 1.5},
        {"output_tokens": True},
        {"cost_usd": "0.1"},
        {"cost_usd": float("nan")},
        {"cost_usd": float("inf")},
        "lots",
    ],
)
def test_a_replay_usage_that_is_not_a_count_is_refused(tmp_path: Path, usage: object) -> None:
    script = tmp_path / "bad.jsonl"
    script.write_text('{"log": "fine"}\n' + json.dumps({"usage": usage}) + "\n")
    agent = build_agent(AgentConfig(name="r", kind="replay", script=script))
    with pytest.raises(AgentUnavailable, match=r"bad\.jsonl:2: 'usage"):
        agent.preflight(os.environ, tmp_path)


def test_a_broken_replay_script_names_its_line(tmp_path: Path) -> None:
    script = tmp_path / "bad.jsonl"
    script.write_text('{"log": "fine"}\n{"log": 1}\n')
    agent = build_agent(AgentConfig(name="r", kind="replay", script=script))
    with pytest.raises(AgentUnavailable, match=r"bad\.jsonl:2"):
        agent.preflight(os.environ, tmp_path)
