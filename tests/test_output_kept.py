"""What an agent prints while it is stopped is stored, and no output is unbounded in bytes."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil

from conftest import cli_env, make_repo
from looptui.engine import Engine, EventKind, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.process import CUT_MARK
from looptui.protocol.events import ErrorReported, OutputPrinted

PY = sys.executable

# Prints a numbered line every millisecond; on SIGTERM, says so and prints 500 more, slower.
CHATTY = textwrap.dedent(
    """\
    import os, signal, time
    stopping = False
    def on_term(*_):
        global stopping
        stopping = True
    signal.signal(signal.SIGTERM, on_term)
    n = 0
    while not stopping:
        n += 1
        os.write(1, f"{n}\\n".encode())
        time.sleep(0.001)
    os.write(1, b"terminating\\n")
    for _ in range(500):
        n += 1
        os.write(1, f"{n}\\n".encode())
        time.sleep(0.002)
    """
)

MEGABYTE_FLOOD = (
    "import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(200): sys.stdout.buffer.write(chunk)\n"
)


def chatty_config(**loop: Any) -> dict[str, Any]:
    return {
        "agents": {"chatty": {"kind": "command", "command": ["python", "chatty.py"]}},
        "loops": {"talk": {"prompt": "talk", "agent": "chatty", "max_iterations": 1, **loop}},
    }


async def wait_for_lines(engine: Engine, run_id: str, count: int) -> None:
    subscription = engine.subscribe(run_id)
    try:
        async with asyncio.timeout(60):
            seen = 0
            async for batch in subscription:
                seen += sum(isinstance(event.payload, OutputPrinted) for event in batch)
                if seen >= count:
                    return
    finally:
        subscription.close()


async def stored_output(engine: Engine, run_id: str) -> list[str]:
    events = await engine.store.events(run_id, kinds=[EventKind.OUTPUT])
    return [
        e.payload.line
        for e in events
        if isinstance(e.payload, OutputPrinted) and e.payload.stream == "stdout"
    ]


def assert_every_number_kept(lines: list[str]) -> None:
    assert "terminating" in lines, "the agent never saw its SIGTERM, or its output was lost"
    at = lines.index("terminating")
    numbers = [int(line) for line in lines if line != "terminating"]
    assert numbers == list(range(1, len(numbers) + 1)), "a gap in the stored output"
    assert len(lines) - at - 1 == 500, "lines printed after the stop were lost"


async def test_stopping_a_run_stores_all_its_agent_printed_while_it_shut_down(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"chatty.py": CHATTY}, chatty_config())
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    try:
        run = await engine.start_run("talk")
        await wait_for_lines(engine, run.id, 300)
        await engine.stop(run.id)
        final = await engine.wait(run.id)
        assert final.status is RunStatus.CANCELLED
        assert_every_number_kept(await stored_output(engine, run.id))
    finally:
        await engine.close()


async def test_a_turn_that_times_out_stores_all_its_agent_printed_while_it_shut_down(
    tmp_path: Path,
) -> None:
    config = chatty_config(iteration_timeout=1.5)
    root = make_repo(tmp_path / "repo", {"chatty.py": CHATTY}, config)
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    try:
        run = await engine.start_run("talk")
        final = await engine.wait(run.id)
        assert final.status is RunStatus.FAILED
        assert_every_number_kept(await stored_output(engine, run.id))
        errors = await engine.store.events(run.id, kinds=[EventKind.ERROR])
        assert any(
            isinstance(e.payload, ErrorReported) and "timed out after 1.5s" in e.payload.message
            for e in errors
        )
    finally:
        await engine.close()


def test_ctrl_c_of_looptui_run_stores_all_the_agent_printed_while_it_shut_down(
    tmp_path: Path,
) -> None:
    """The user's Ctrl-C, through the real command: SIGINT to `looptui run`."""
    root = make_repo(tmp_path / "repo", {"chatty.py": CHATTY}, chatty_config())
    store = root / ".git/looptui/store.db"
    command = subprocess.Popen(
        [PY, "-m", "looptui", "run", "talk"],
        cwd=root,
        env={**cli_env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert command.stdout is not None
    try:
        for printed in command.stdout:  # what it prints as the agent talks: the event to await
            if printed.split()[-1:] == ["300"]:
                break
        command.send_signal(signal.SIGINT)
        rest, _ = command.communicate(timeout=60)
        assert command.returncode == 130, rest
    finally:
        command.kill()
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT data FROM events WHERE kind = 'output' ORDER BY id").fetchall()
    lines = [json.loads(data)["line"] for (data,) in rows if json.loads(data)["stream"] == "stdout"]
    assert_every_number_kept(lines)


def stored_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        events = db.execute("SELECT coalesce(sum(length(data)), 0) FROM events").fetchone()[0]
        checks = db.execute("SELECT coalesce(sum(length(output)), 0) FROM check_results")
        return int(events) + int(checks.fetchone()[0])


async def test_a_flood_without_newlines_is_stored_in_little_and_held_in_little_memory(
    tmp_path: Path,
) -> None:
    config = {
        "agents": {"flood": {"kind": "command", "command": ["python", "flood.py"]}},
        "loops": {
            "flood": {
                "prompt": "flood",
                "agent": "flood",
                "max_iterations": 1,
                "checks": [{"name": "flood", "run": "python flood.py"}],
            }
        },
    }
    root = make_repo(tmp_path / "repo", {"flood.py": MEGABYTE_FLOOD}, config)
    me = psutil.Process()
    baseline, peak = me.memory_info().rss, 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, me.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    try:
        run = await engine.start_run("flood")
        async with asyncio.timeout(120):
            final = await engine.wait(run.id)
        outputs = await stored_output(engine, run.id)
        checks = await engine.store.check_results(run.id)
    finally:
        await engine.close()
        sampler.cancel()
    assert final.status is not RunStatus.RUNNING and final.finished_at is not None
    assert [line.endswith(CUT_MARK) for line in outputs] == [True]  # one line, cut
    assert checks  # (the verifier may run a check more than once)
    for _, check in checks:
        assert check.exit_code == 0 and check.output.endswith(CUT_MARK)
    store = root / ".git" / "looptui" / "store.db"
    assert stored_bytes(store) < 4 * 1024 * 1024
    assert peak - baseline < 150 * 1024 * 1024, f"memory grew by {(peak - baseline) >> 20} MB"
