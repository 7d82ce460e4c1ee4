"""The scheduler fires time triggers on a fake clock, through one path with the overlap
policies, records every firing in the ledger, and counts a firing as started only once its
run's first iteration began. Real engine, real git, real agent processes, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.store.ledger import Outcome
from scheduler_support import T0, loop, rig, until

pytestmark = pytest.mark.timeout(120)


async def test_a_cron_trigger_fires_on_the_minute_and_its_run_gets_what_fired_it(
    tmp_path: Path,
) -> None:
    loops = {"tick": loop(triggers=[{"cron": "*/5 * * * *", "name": "five"}])}
    async with rig(tmp_path, loops) as r:
        entry = await r.engine.store.schedule_entry("tick", "five")
        assert entry is not None and entry.next_due_at == T0 + 300
        await r.advance(299)
        assert await r.firings() == []  # not yet due: nothing fired
        await r.advance(1)
        (firing,) = await r.firings()
        assert firing.due_at == T0 + 300 and firing.trigger == "five"
        settled = await r.settled(firing.id)
        assert settled.outcome is Outcome.STARTED and settled.run_id
        prompt = await r.prompt_of(settled.run_id)
        assert 'Fired by: cron "*/5 * * * *" (UTC), due' in prompt
        entry = await r.engine.store.schedule_entry("tick", "five")
        assert entry is not None and entry.next_due_at == T0 + 600


async def test_overlap_queue_keeps_one_waiting_firing_and_folds_later_ones_into_it(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, {"work": loop("hold", prompt="Look at:\n{changed_paths}")}) as r:
        first = await r.scheduler.fire("work", payload={"changed_paths": ["a.py"]})
        second = await r.scheduler.fire("work", payload={"changed_paths": ["b.py"]}, due_at=T0 + 5)
        third = await r.scheduler.fire(
            "work", payload={"changed_paths": ["c.py", "b.py"]}, due_at=T0 + 9
        )
        assert first.run_id is not None
        assert (second.outcome, second.run_id) == (Outcome.PENDING, None)  # it waits
        assert (third.outcome, third.coalesced_into) == (Outcome.COALESCED, second.id)
        waiting = await r.engine.store.firing(second.id)
        assert waiting.payload["changed_paths"] == ["b.py", "c.py"]  # nothing a watcher saw is lost
        assert (await r.settled(first.id)).outcome is Outcome.STARTED
        r.release()  # the first run ends, the waiting firing starts its run
        started = await r.settled(second.id)
        assert started.outcome is Outcome.STARTED and started.run_id != first.run_id
        await r.engine.wait(started.run_id)
        assert "Look at:\n- b.py\n- c.py" in await r.prompt_of(started.run_id)
        assert "a.py" not in await r.prompt_of(started.run_id)
        assert await r.outcomes("work") == [Outcome.STARTED, Outcome.STARTED, Outcome.COALESCED]


async def test_overlap_skip_and_replace(tmp_path: Path) -> None:
    loops = {
        "skipper": loop("hold", policy={"overlap": "skip"}),
        "replacer": loop("hold", policy={"overlap": "replace"}),
    }
    async with rig(tmp_path, loops) as r:
        await r.scheduler.fire("skipper")
        skipped = await r.scheduler.fire("skipper", due_at=T0 + 10)
        assert skipped.outcome is Outcome.SKIPPED and "still going" in (skipped.reason or "")

        old = await r.scheduler.fire("replacer")
        assert old.run_id is not None
        await r.settled(old.id)
        new = await r.scheduler.fire("replacer", due_at=T0 + 10)
        assert new.run_id is not None and new.run_id != old.run_id
        stopped = await r.engine.store.run(old.run_id)
        assert stopped.status is RunStatus.CANCELLED  # its work kept: the worktree is there
        assert stopped.error == f"replaced by firing #{new.id} (overlap = replace)"
        assert Path(stopped.worktree).is_dir()
        assert (await r.settled(new.id)).outcome is Outcome.STARTED


async def test_parallel_runs_up_to_its_limit_then_queues(tmp_path: Path) -> None:
    loops = {"wide": loop("hold", policy={"overlap": "parallel", "parallel_max": 2})}
    async with rig(tmp_path, loops, settings={"max_parallel": 4}) as r:
        one = await r.scheduler.fire("wide")
        two = await r.scheduler.fire("wide", due_at=T0 + 10)
        three = await r.scheduler.fire("wide", due_at=T0 + 20)
        assert one.run_id and two.run_id and one.run_id != two.run_id
        assert (three.outcome, three.run_id) == (Outcome.PENDING, None)


async def test_two_triggers_due_at_one_instant_start_one_run(tmp_path: Path) -> None:
    triggers = [{"cron": "0 * * * *", "name": "hourly"}, {"every": "30m", "name": "half"}]
    policy = {"overlap": "parallel", "parallel_max": 3}
    async with rig(tmp_path, {"both": loop("hold", triggers=triggers, policy=policy)}) as r:
        await r.advance(1800)  # 10:30: the interval alone
        await r.advance(1800)  # 11:00: the cron's hour and the interval's second slot
        half, *at_eleven = await r.firings("both")
        assert (half.trigger, half.due_at, half.run_id is not None) == ("half", T0 + 1800, True)
        assert [f.due_at for f in at_eleven] == [T0 + 3600, T0 + 3600]
        starter, folded = at_eleven
        assert starter.run_id is not None and starter.run_id != half.run_id
        assert (folded.outcome, folded.coalesced_into) == (Outcome.COALESCED, starter.id)
        assert len(await r.engine.history.runs()) == 2


async def test_a_firing_counts_as_started_only_once_its_first_iteration_began(
    tmp_path: Path,
) -> None:
    # one slot: the second loop's run waits in the engine's queue behind the first
    async with rig(
        tmp_path, {"a": loop("hold"), "b": loop("quick")}, settings={"max_parallel": 1}
    ) as r:
        holder = await r.scheduler.fire("a")
        await r.settled(holder.id)
        queued = await r.scheduler.fire("b")
        assert queued.run_id is not None
        run = await r.engine.store.run(queued.run_id)
        assert run.status is RunStatus.QUEUED
        assert (await r.engine.store.firing(queued.id)).outcome is Outcome.PENDING  # not started
        await r.engine.stop(queued.run_id)
        failed = await r.settled(queued.id)
        assert failed.outcome is Outcome.FAILED and failed.run_id == queued.run_id


async def test_a_firing_whose_run_cannot_start_is_failed_with_the_reason(tmp_path: Path) -> None:
    loops = {"broken": loop("quick", checks=[{"name": "t", "run": "no-such-program-xyz --check"}])}
    async with rig(tmp_path, loops) as r:
        firing = await r.scheduler.fire("broken")
        assert firing.outcome is Outcome.FAILED
        assert "no-such-program-xyz" in (firing.reason or "")
        assert firing.run_id is None


async def test_when_commands_and_a_goal_that_holds_at_the_base_cost_no_agent_turn(
    tmp_path: Path,
) -> None:
    loops = {
        "todo": loop("quick", when=["test -s todo.txt"]),
        "green": loop("quick", checks=[{"name": "readme", "run": "grep -q hi README.md"}]),
        "red": loop(
            "quick", checks=[{"name": "readme", "run": "grep -q bye README.md"}], max_iterations=1
        ),
    }
    async with rig(tmp_path, loops) as r:
        todo = await r.scheduler.fire("todo")
        assert todo.outcome is Outcome.NOTHING_TO_DO and "test -s todo.txt" in (todo.reason or "")
        green = await r.scheduler.fire("green")
        assert green.outcome is Outcome.NOTHING_TO_DO and "goal already holds" in (
            green.reason or ""
        )
        red = await r.scheduler.fire("red")
        assert red.run_id is not None  # the checks fail at the base: there is work
        assert not (tmp_path / "prompts").exists() or {
            p.name for p in (tmp_path / "prompts").iterdir()
        } <= {red.run_id}
        assert await r.engine.history.runs() and [
            run.loop for run in await r.engine.history.runs()
        ] == ["red"]


async def test_a_restart_resumes_the_schedule_exactly_and_drains_the_queue(
    tmp_path: Path,
) -> None:
    loops = {"tick": loop("hold", triggers=[{"every": "10m", "jitter": "1m", "name": "ten"}])}
    async with rig(tmp_path, loops) as r:
        root = r.engine.repository.root
        entry = await r.engine.store.schedule_entry("tick", "ten")
        assert entry is not None and entry.anchor == T0
        first_due = entry.next_due_at
        assert first_due is not None and T0 + 600 <= first_due < T0 + 660
        running = await r.scheduler.fire("tick")
        waiting = await r.scheduler.fire("tick", due_at=T0 + 30)
        assert waiting.outcome is Outcome.PENDING and waiting.run_id is None
        assert running.run_id is not None
        await r.settled(running.id)
    # the service stopped: the run was cancelled by the engine's close; the queue is stored
    async with rig(tmp_path, loops, root=root, start=T0 + 60) as r:
        entry = await r.engine.store.schedule_entry("tick", "ten")
        assert entry is not None and (entry.anchor, entry.next_due_at) == (T0, first_due)
        drained = await r.settled(waiting.id)  # nothing is going: the waiting firing starts
        assert drained.outcome is Outcome.STARTED and drained.run_id is not None


@pytest.mark.parametrize(
    ("cron", "policy", "down_for", "runs", "missed", "next_due"),
    [
        # 3 fire times missed: the newest runs, 2 are recorded missed, in one row
        ("30 * * * *", {"catch_up": "run_once"}, 3 * 3600, 1, 2, 3 * 3600 + 1800),
        ("30 * * * *", {"catch_up": "skip"}, 3 * 3600, 0, 3, 3 * 3600 + 1800),
        # daily at 10:30, down 30 h: the newest miss (day 2, 10:30) is 5.5 h old, past 2 h
        (
            "30 10 * * *",
            {"catch_up": "run_once", "catch_up_max_age": "2h"},
            30 * 3600,
            0,
            2,
            48 * 3600 + 1800,
        ),
    ],
)
async def test_what_fell_due_while_the_service_was_down_is_one_run_at_most(
    tmp_path: Path,
    cron: str,
    policy: dict[str, str],
    down_for: int,
    runs: int,
    missed: int,
    next_due: int,
) -> None:
    loops = {"hourly": loop(triggers=[{"cron": cron}], policy=policy)}
    async with rig(tmp_path, loops) as r:
        root = r.engine.repository.root
    # down from T0 (10:00) for `down_for`; the cron was due at every :30 meanwhile
    async with rig(tmp_path, loops, root=root, start=T0 + down_for + 60) as r:
        await r.advance(0)
        firings = await r.firings("hourly")
        recorded_missed = [f for f in firings if f.outcome is Outcome.MISSED]
        assert len(recorded_missed) == 1  # one row, however long the outage
        assert recorded_missed[0].payload["missed"] == missed
        started = [f for f in firings if f.outcome is not Outcome.MISSED]
        assert len(started) == runs
        if runs:  # the newest of the fire times missed
            assert started[0].due_at == T0 + down_for - 1800
            assert started[0].payload["caught_up"] is True
        entry = await r.engine.store.schedule_entry("hourly", "cron")
        assert entry is not None and entry.next_due_at == T0 + next_due  # back on time
        assert "passed while the service was down" in (recorded_missed[0].reason or "")


async def test_fire_times_that_pass_while_the_service_is_up_but_asleep_are_not_called_down(
    tmp_path: Path,
) -> None:
    loops = {"hourly": loop(triggers=[{"cron": "30 * * * *"}], policy={"catch_up": "skip"})}
    async with rig(tmp_path, loops) as r:
        await r.advance(3 * 3600)  # the machine slept three hours with the service up
        (missed,) = [f for f in await r.firings("hourly") if f.outcome is Outcome.MISSED]
        assert missed.reason == (
            "3 fire times passed before the scheduler could fire them (the machine slept?) "
            "(catch_up = skip)"
        )


async def test_a_chained_loop_fires_after_its_upstream_run_ends_with_a_given_status(
    tmp_path: Path,
) -> None:
    loops = {
        "build": loop("maker", checks=[{"name": "made", "run": "test -e made.txt"}]),
        "docs": loop(
            "quick",
            prompt="Document what {previous_run} did ({previous_verdict}).",
            triggers=[{"after": "build", "statuses": ["unchanged", "succeeded"]}],
        ),
        "alarm": loop("quick", triggers=[{"after": "build", "statuses": ["failed"]}]),
    }
    async with rig(tmp_path, loops) as r:
        build = await r.scheduler.fire("build")
        assert build.run_id is not None
        ended = await r.engine.wait(build.run_id)
        assert ended.status is RunStatus.SUCCEEDED
        (docs,) = await until(lambda: r.firings("docs"), bool)
        docs = await r.settled(docs.id)
        assert docs.outcome is Outcome.STARTED and docs.run_id
        prompt = await r.prompt_of(docs.run_id)
        assert f"Document what {build.run_id} (build, succeeded) did (done" in prompt
        assert await r.firings("alarm") == []


async def test_a_paused_trigger_does_not_fire_and_resumes_from_now(tmp_path: Path) -> None:
    loops = {"tick": loop(triggers=[{"cron": "*/10 * * * *", "name": "ten"}])}
    async with rig(tmp_path, loops) as r:
        assert await r.scheduler.pause("tick") == ["ten"]
        await r.advance(3600)
        assert await r.firings() == []  # paused: nothing fired, nothing caught up
        assert await r.scheduler.unpause("tick", "ten") == ["ten"]
        entry = await r.engine.store.schedule_entry("tick", "ten")
        assert entry is not None and (entry.paused, entry.next_due_at) == (False, T0 + 4200)
        await r.advance(600)
        (firing,) = await r.firings()
        assert firing.due_at == T0 + 4200
        with pytest.raises(LooptuiError, match=r"no trigger 'nope'.*triggers: ten"):
            await r.scheduler.pause("tick", "nope")


async def test_a_fire_time_recorded_just_before_a_crash_runs_once_after_the_restart(
    tmp_path: Path,
) -> None:
    loops = {"tick": loop(triggers=[{"cron": "*/5 * * * *", "name": "five"}])}
    async with rig(tmp_path, loops) as r:
        root = r.engine.repository.root
    # the last service recorded the 10:05 firing with the next fire time, then died before
    # its policy decided: both are in the store, or neither would be
    async with rig(tmp_path, {}, root=root, start=T0) as r:
        await r.scheduler.close()  # no scheduler: only the store, as the crash left it
        firing_id = await r.engine.store.record_due(
            "tick", "five", next_due_at=T0 + 600, fired_at=T0 + 300, fire=(T0 + 300, {})
        )
        assert firing_id is not None
    async with rig(tmp_path, loops, root=root, start=T0 + 301) as r:
        started = await r.settled(firing_id)  # the restart drains it: one run
        assert started.outcome is Outcome.STARTED
        await r.advance(0)
        assert [f.due_at for f in await r.firings()] == [T0 + 300]  # not fired again
        entry = await r.engine.store.schedule_entry("tick", "five")
        assert entry is not None and entry.next_due_at == T0 + 600
