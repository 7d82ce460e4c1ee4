"""What the ledger says when a firing's run meets a usage limit or a refusing hook: deferred
(and started again at the reset), refused with the hook's words. Real engine, real agent
processes, the real Anthropic SDK against the loopback fake model server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fake_models import FakeModelServer, Fault, Say, ToolUse
from looptui.engine.models import RunStatus
from looptui.engine.store.ledger import Outcome
from looptui.engine.triggers.clock import FakeClock
from looptui.service.deferrals import Deferrals
from scheduler_support import loop, rig, until

pytestmark = pytest.mark.timeout(120)
KEY = "sk-test-" + "e" * 32


async def test_a_firing_whose_run_meets_a_usage_limit_is_deferred_then_started_again(
    tmp_path: Path,
) -> None:
    script = [
        Fault("429", retry_after=3600.0),
        ToolUse("write_file", {"path": "done.txt", "content": "done\n"}),
        Say("Done."),
    ]
    with FakeModelServer(script) as server:
        model = {"kind": "anthropic", "base_url": server.url, "api_key_env": "MODEL_KEY"}
        loops = {
            "job": loop(
                "model",
                prompt="Create done.txt.",
                checks=[{"name": "done", "run": "test -f done.txt"}],
            )
        }
        clock = FakeClock(time.time())
        async with rig(
            tmp_path, loops, clock=clock, more_agents={"model": model}, environ={"MODEL_KEY": KEY}
        ) as r:
            firing = await r.scheduler.fire("job")
            assert firing.run_id is not None
            deferred = await until(
                lambda: r.engine.store.firing(firing.id), lambda f: f.outcome is Outcome.DEFERRED
            )
            run = await r.engine.store.run(firing.run_id)
            assert run.status is RunStatus.DEFERRED
            assert deferred.retry_at == run.retry_at and "usage limit until" in (
                deferred.reason or ""
            )
            # the loop is not free while its run waits for the limit: a firing now waits too
            waiting = await r.scheduler.fire("job", due_at=clock.now() + 10)
            assert (waiting.outcome, waiting.run_id) == (Outcome.PENDING, None)

            deferrals = Deferrals(r.engine, clock)
            await deferrals.start()
            try:
                assert run.retry_at is not None
                await until(lambda: _now(clock.sleeping_until()), lambda s: run.retry_at in s)
                clock.set(run.retry_at)
                again = await until(
                    lambda: r.engine.store.firing(firing.id), lambda f: f.outcome is Outcome.STARTED
                )
                assert again.run_id == run.id
                final = await r.engine.wait(run.id)
                assert final.status is RunStatus.SUCCEEDED, final.error
            finally:
                await deferrals.stop()


async def _now(value: object) -> object:
    return value


async def test_a_firing_refused_by_the_run_start_hook_is_refused_with_its_words(
    tmp_path: Path,
) -> None:
    hook = "echo 'frozen until Monday' >&2; exit 2"
    loops = {"job": loop("quick", hooks={"run_start": hook})}
    async with rig(tmp_path, loops) as r:
        firing = await r.scheduler.fire("job")
        refused = await r.settled(firing.id)
        assert refused.outcome is Outcome.REFUSED
        assert "frozen until Monday" in (refused.reason or "")
        assert not (tmp_path / "prompts").exists()  # no agent turn was spent
