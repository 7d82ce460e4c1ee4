"""A run stopped by a usage limit that says when it resets is deferred, never killed: parked
with its worktree and session, and continued at the reset by the service's deferrals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import cli_env, make_repo
from fake_models import FakeModelServer, Fault, Say, ToolUse
from looptui.console import run_to_json, runs_table
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.models import Run, local_clock
from looptui.engine.triggers import FINAL_STATUSES
from looptui.engine.triggers.clock import FakeClock
from looptui.protocol.events import ErrorReported, StatusChanged
from looptui.service.deferrals import Deferrals

KEY = "sk-test-" + "d" * 32
HOUR = 3600.0
DEADLINE = 60.0


async def until(condition: Callable[[], Any], what: str) -> Any:
    """Wait for an async `condition` to give something true, up to DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def limited_script() -> list[Any]:
    """The model is rate limited for an hour, then writes done.txt and answers."""
    return [
        Fault("429", retry_after=HOUR),
        ToolUse("write_file", {"path": "done.txt", "content": "done\n"}),
        Say("Done."),
    ]


async def open_engine(tmp_path: Path, server: FakeModelServer, kind: str, **agent: Any) -> Engine:
    model: dict[str, Any] = {"kind": "anthropic", "base_url": server.url}
    if kind != "anthropic":
        model = {"kind": "openai", "api": kind, "base_url": server.url + "/v1"}
    config = {
        "agents": {"model": {**model, "api_key_env": "MODEL_KEY", **agent}},
        "loops": {
            "job": {
                "prompt": "Create done.txt.",
                "agent": "model",
                "checks": [{"name": "done", "run": "test -f done.txt"}],
                "max_iterations": 2,
            }
        },
    }
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
    env = {**cli_env(), "MODEL_KEY": KEY}
    return await Engine.open(root, env, load_config(root / CONFIG_NAME))


def assert_deferred(run: Run, started: float) -> None:
    assert run.status is RunStatus.DEFERRED, run.error
    assert run.retry_at is not None and started + HOUR - 5 <= run.retry_at <= time.time() + HOUR
    assert Path(run.worktree).is_dir() and run.resume_token  # kept, to continue
    when = local_clock(run.retry_at)
    assert run.error == f"usage limit until {when} (local), resumes then"
    assert run.status_label == f"deferred · resumes {when}"


async def resumed_at_the_reset(engine: Engine, clock: FakeClock, run: Run) -> Run:
    """Move the clock to the run's reset once the deferrals wait for it; the run's end."""
    assert run.retry_at is not None

    async def asleep() -> bool:
        return run.retry_at in clock.sleeping_until()

    await until(asleep, "the deferrals to wait for the reset")
    clock.set(run.retry_at - 1)  # not yet: the run stays parked
    assert (await engine.store.run(run.id)).status is RunStatus.DEFERRED
    clock.set(run.retry_at)

    async def left_deferred() -> bool:
        return (await engine.store.run(run.id)).status is not RunStatus.DEFERRED

    await until(left_deferred, "the run to resume")
    return await engine.wait(run.id)


async def test_a_429_with_retry_after_defers_the_run_and_it_resumes_at_the_reset(
    tmp_path: Path,
) -> None:
    with FakeModelServer(limited_script()) as server:
        engine = await open_engine(tmp_path, server, "anthropic")
        deferrals = Deferrals(engine, FakeClock(time.time()))
        try:
            started = time.time()
            run = await engine.start_run("job")
            deferred = await engine.wait(run.id)
            assert_deferred(deferred, started)
            assert len(server.requests) == 1  # an hour off: no retry waits it out
            events = await engine.history.events(run.id)
            said = [e.payload for e in events if isinstance(e.payload, StatusChanged)]
            assert said[-1] == StatusChanged(RunStatus.DEFERRED, deferred.error, deferred.retry_at)
            errors = [e.payload.message for e in events if isinstance(e.payload, ErrorReported)]
            assert errors and "HTTP 429" in errors[-1]
            iterations = await engine.store.iterations(run.id)
            assert [i.finished_at for i in iterations] == [None]  # cut short, done again
            listed = runs_table([deferred]).renderables[0]
            assert f"deferred · resumes {local_clock(deferred.retry_at or 0)}" in str(listed)
            assert run_to_json(deferred)["retry_at"] is not None

            # the service's deferrals, started after the run was parked, find it in the store
            clock = deferrals.clock
            assert isinstance(clock, FakeClock)
            await deferrals.start()
            final = await resumed_at_the_reset(engine, clock, deferred)
            assert final.status is RunStatus.SUCCEEDED, final.error
            assert final.iterations == 1 and final.resumes == 0 and final.retry_at is None
            assert (Path(final.worktree) / "done.txt").read_text() == "done\n"
            assert len(server.requests) == 3  # the same conversation, continued
        finally:
            await deferrals.stop()
            await engine.close()


async def test_a_run_deferred_while_the_service_runs_is_resumed_at_its_reset(
    tmp_path: Path,
) -> None:
    with FakeModelServer(limited_script()) as server:
        engine = await open_engine(tmp_path, server, "chat")
        clock = FakeClock(time.time())
        deferrals = Deferrals(engine, clock)
        try:
            await deferrals.start()  # before the run: it learns of it from the engine's feed
            started = time.time()
            run = await engine.start_run("job")
            deferred = await engine.wait(run.id)
            assert_deferred(deferred, started)
            final = await resumed_at_the_reset(engine, clock, deferred)
            assert final.status is RunStatus.SUCCEEDED, final.error
            assert (Path(final.worktree) / "done.txt").is_file()
            assert deferrals.waiting() == set()
        finally:
            await deferrals.stop()
            await engine.close()


async def test_a_429_without_a_reset_time_fails_the_run_as_before(tmp_path: Path) -> None:
    with FakeModelServer([Fault("429"), Fault("429"), Say("never"), Say("never")]) as server:
        engine = await open_engine(tmp_path, server, "anthropic", max_retries=1)
        try:
            run = await engine.start_run("job")
            final = await engine.wait(run.id)
            events = await engine.history.events(run.id)
        finally:
            await engine.close()
    assert final.status is RunStatus.FAILED and final.retry_at is None
    assert final.error == "goal not met after 2 iterations"
    statuses = [e.payload.status for e in events if isinstance(e.payload, StatusChanged)]
    assert RunStatus.DEFERRED not in statuses
    errors = [e.payload.message for e in events if isinstance(e.payload, ErrorReported)]
    assert "HTTP 429 (rate limited) after 2 attempts" in errors


def test_a_deferred_run_is_neither_active_nor_final() -> None:
    assert not RunStatus.DEFERRED.is_active  # no process drives it
    assert RunStatus.DEFERRED not in FINAL_STATUSES  # an `after` trigger waits on
