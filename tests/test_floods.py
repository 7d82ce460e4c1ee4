"""Output floods: a child that prints without end is slowed and cut, never buffered whole."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from conftest import cli_env, make_repo
from looptui.cli import PRINT_BACKLOG, _print_events
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.agents import AgentTask, Finished, OutputLine, build_agent
from looptui.engine.agents.base import NOTE_STREAM, AgentError, AgentEvent
from looptui.engine.agents.command import MAX_OUTPUT_LINES
from looptui.engine.config import CONFIG_NAME, AgentConfig
from looptui.engine.process import KEPT_AT_END
from looptui.engine.store import Store
from looptui.engine.store.feed import CursorFeed
from looptui.protocol.events import ErrorReported, OutputPrinted
from test_bad_input import alive, default_sigint, wait_for

PY = sys.executable


def a_task(tmp_path: Path, prompt: str = "go") -> AgentTask:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    return AgentTask("r1", 1, worktree, prompt, tmp_path / "scratch", dict(os.environ))


async def collect(argv: tuple[str, ...], task: AgentTask, seconds: float) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    agent = build_agent(AgentConfig(name="flood", kind="command", command=argv))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async with contextlib.aclosing(agent.run(task)) as turn:
                async for event in turn:
                    events.append(event)
    return events


def flood_config(**loop: Any) -> dict[str, Any]:
    return {
        "agents": {"spam": {"kind": "command", "command": ["yes", "spam spam spam"]}},
        "loops": {"flood": {"prompt": "flood", "agent": "spam", "max_iterations": 1, **loop}},
    }


async def test_a_long_output_keeps_its_start_counts_the_rest_and_shows_its_end(
    tmp_path: Path,
) -> None:
    total = MAX_OUTPUT_LINES * 3
    script = f"for i in range({total}): print(i)\nprint('the end')"
    events = await collect((PY, "-c", script), a_task(tmp_path), 60)
    lines = [e for e in events if isinstance(e, OutputLine)]
    kept = [e.text for e in lines if e.stream == "stdout"]
    notes = [e.text for e in lines if e.stream == NOTE_STREAM]
    assert kept[:MAX_OUTPUT_LINES] == [str(i) for i in range(MAX_OUTPUT_LINES)]
    assert kept[MAX_OUTPUT_LINES:] == [str(i) for i in range(total - 19, total)] + ["the end"]
    assert notes[0].startswith(f"[looptui: more than {MAX_OUTPUT_LINES} lines of output")
    assert notes[-1] == (
        f"[looptui: {total + 1 - MAX_OUTPUT_LINES} stdout lines dropped in all; the last 20 follow]"
    )
    assert events[-1] == Finished(ok=True, message="\n".join(kept[-20:]), exit_code=0)


async def test_an_endless_flood_is_cut_and_reported_while_it_goes_on(tmp_path: Path) -> None:
    started = time.monotonic()
    events = await collect(("yes", "spam spam spam"), a_task(tmp_path), 5)
    assert time.monotonic() - started < 10
    lines = [e for e in events if isinstance(e, OutputLine)]
    # once stopped, the flood's end is told too: its count and its last lines
    assert MAX_OUTPUT_LINES <= len(lines) <= MAX_OUTPUT_LINES + KEPT_AT_END + 10
    assert any("lines dropped so far" in e.text for e in lines if e.stream == NOTE_STREAM)
    assert "lines dropped in all" in lines[-KEPT_AT_END - 1].text


async def test_a_prompt_too_long_for_an_argument_is_its_own_error(tmp_path: Path) -> None:
    prompt = "x" * 300_000  # more than Linux takes in one argument
    events = await collect((PY, "-c", "pass", "{prompt}"), a_task(tmp_path, prompt), 30)
    [error] = [e for e in events if isinstance(e, AgentError)]
    assert "too long to pass" in error.message and "{prompt_file}" in error.message
    assert "cannot start" not in error.message
    assert isinstance(events[-1], Finished) and events[-1].cannot_start


async def test_a_flood_with_a_short_timeout_ends_soon_after_it_and_stores_few_events(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, flood_config(iteration_timeout=2))
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    started = time.monotonic()
    run = await engine.start_run("flood")
    final = await engine.wait(run.id)
    elapsed = time.monotonic() - started
    events = await engine.store.events(run.id)
    await engine.close()
    assert final.status is RunStatus.FAILED
    assert elapsed < 2 + 6, f"the run took {elapsed:.1f}s to end after a 2s timeout"
    assert len(events) < MAX_OUTPUT_LINES + 100


def test_looptui_run_of_a_flood_exits_soon_after_the_timeout(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, flood_config(iteration_timeout=3))
    started = time.monotonic()
    result = subprocess.run(
        [PY, "-m", "looptui", "run", "flood"],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 3 + 10, f"looptui run took {elapsed:.1f}s to end after a 3s timeout"
    assert len(result.stdout.splitlines()) < MAX_OUTPUT_LINES + 100
    assert "lines dropped" in result.stdout and "timed out after 3s" in result.stdout


async def test_the_printer_skips_output_lines_it_is_too_far_behind_to_print(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "s.db")
    subscription = CursorFeed(store, "r1", None)  # as Engine.subscribe makes it
    backlog = PRINT_BACKLOG * 3
    for index in range(backlog):
        store.emit("r1", OutputPrinted(f"line {index}"), 1)
    store.emit("r1", ErrorReported("the agent's turn timed out"), 1)
    await store.flush()
    subscription.close()
    output = io.StringIO()
    await _print_events(subscription, Console(file=output, width=100), lambda: None)
    await store.close()
    printed = output.getvalue().splitlines()
    assert len(printed) < PRINT_BACKLOG
    assert f"… {backlog} lines of output not shown" in printed[0]
    assert printed[-1].endswith("✗ the agent's turn timed out")  # never skipped


SLOW_TO_STOP = textwrap.dedent(
    """\
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL stops it
    with open(sys.argv[1] + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    print("ignoring SIGTERM", flush=True)
    time.sleep(120)
    """
)


def test_a_second_ctrl_c_quits_at_once_and_kills_the_agent(tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    config = {
        "agents": {
            "stubborn": {"kind": "command", "command": ["python", "stubborn.py", str(pid_file)]}
        },
        "loops": {"wait": {"prompt": "wait", "agent": "stubborn", "max_iterations": 1}},
    }
    root = make_repo(tmp_path / "repo", {"stubborn.py": SLOW_TO_STOP}, config)
    process = subprocess.Popen(
        [PY, "-m", "looptui", "run", "wait"],
        cwd=root,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        wait_for(lambda: pid_file.exists() or process.poll() is not None, 30, "the agent")
        assert process.poll() is None, process.communicate()
        agent_pid = int(pid_file.read_text())
        process.send_signal(signal.SIGINT)  # stopping waits for the agent, which ignores it
        time.sleep(0.2)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        quit_after = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stdout + stderr
    assert quit_after < 1.0, f"the second Ctrl-C took {quit_after:.2f}s"  # the grace is 2s
    assert "quitting now" in stdout and "Traceback" not in stderr
    wait_for(lambda: not alive(agent_pid), 5, "the agent to die")
    status = subprocess.run(
        [PY, "-m", "looptui", "status", "--json"],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"status": "cancelled"' in status.stdout
