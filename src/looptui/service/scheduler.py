"""The scheduler: the service's loops that run themselves (see docs/triggers.md).

Every firing takes one path, whatever fired it (a time, a file, a commit, another loop's
run, or `looptui fire`): it is written to the ledger first, then the loop's policy decides
under the loop's lock, so that two triggers at one instant see each other. A firing counts
as started only once its run's first iteration began; the scheduler learns that, and every
run's end, from the engine's event feed, as any client would.

The schedule (next fire times, pauses) and the queued firings are in the store, so a restart
resumes them; what fell due while the service was down is settled by the catch-up policy, at
most one run per trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from looptui.engine.config import Config, LoopConfig
from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.supervisor import Engine
from looptui.engine.triggers.clock import Clock, SystemClock
from looptui.engine.triggers.describe import describe, spec_of
from looptui.engine.triggers.model import After, Cron, Every, Trigger
from looptui.engine.triggers.next_fire import due_between, next_fire
from looptui.engine.triggers.policy import Action, Active, on_catch_up, on_fire
from looptui.engine.triggers.preconditions import nothing_to_do
from looptui.protocol.events import Event, IterationMarked, StatusChanged

logger = logging.getLogger(__name__)

MANUAL = "manual"  # the trigger name of `looptui fire`
# A time trigger that fires this late is still on time (a busy loop, a slow disk); later
# than that, or past a second fire time, it was missed and the catch-up policy decides.
LATE_TOLERANCE = 60.0


@dataclass(frozen=True)
class _Started:
    firing_id: int
    due_at: float


class Scheduler:
    """Fires the configured loops' triggers for one engine, until closed."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock: Clock = clock or SystemClock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._runs: dict[str, _Started] = {}  # run id -> the firing that started it
        self._changed = asyncio.Event()  # the schedule changed: the timer looks again
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: list[asyncio.Task[None]] = []

    @property
    def config(self) -> Config | None:
        return self.engine.config

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take up the schedule where the last service left it, then start firing."""
        after = await self.store.last_event_id()
        await self._settle_leftovers()
        await self.sync()
        feed = self.engine.subscribe(None, after)
        self._main = [
            asyncio.create_task(self._follow(feed), name="scheduler-feed"),
            asyncio.create_task(self._tick(), name="scheduler-timer"),
        ]
        for loop in self._loops():  # a queue left by the last service drains now
            self._spawn(self._drain(loop.name))

    async def close(self) -> None:
        """Stop firing; runs already started go on (the engine decides their fate)."""
        for task in [*self._main, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._main, *self._tasks, return_exceptions=True)
        self._main = []

    async def idle(self) -> None:
        """Wait until the firings in flight are settled or started (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    def _loops(self) -> list[LoopConfig]:
        return list(self.config.loops.values()) if self.config else []

    # -- the schedule ------------------------------------------------------------------------

    async def sync(self) -> None:
        """Give every configured trigger its entry in the stored schedule: a new or edited
        trigger is scheduled from now; an unchanged one keeps its next fire time, so one that
        fell due while the service was down is caught up by the timer."""
        now = self.clock.now()
        for loop in self._loops():
            for trigger in loop.triggers:
                entry = await self.store.schedule_entry(loop.name, trigger.name)
                spec = spec_of(trigger)
                if entry is not None and entry.spec == spec:
                    continue
                anchor = now if isinstance(trigger, Every) else None
                await self.store.set_schedule(
                    loop.name,
                    trigger.name,
                    next_due_at=_first_due(trigger, now, _seed(loop.name, trigger), anchor),
                    paused=trigger.paused,
                    anchor=anchor,
                    spec=spec,
                )
        self._changed.set()

    async def pause(self, loop_name: str, trigger_name: str | None = None) -> list[str]:
        """Pause one trigger of a loop, or all of them; returns the names paused."""
        return await self._set_paused(loop_name, trigger_name, True)

    async def unpause(self, loop_name: str, trigger_name: str | None = None) -> list[str]:
        """Resume paused triggers; a time trigger is scheduled from now (what fell due while
        it was paused was paused too)."""
        return await self._set_paused(loop_name, trigger_name, False)

    async def _set_paused(
        self, loop_name: str, trigger_name: str | None, paused: bool
    ) -> list[str]:
        loop = self._loop(loop_name)
        triggers = [t for t in loop.triggers if trigger_name in (None, t.name)]
        if trigger_name is not None and not triggers:
            known = ", ".join(t.name for t in loop.triggers) or "none"
            raise LooptuiError(
                f"loop {loop_name} has no trigger {trigger_name!r} (triggers: {known})"
            )
        if not triggers:
            raise LooptuiError(f"loop {loop_name} has no triggers")
        now = self.clock.now()
        for trigger in triggers:
            entry = await self.store.schedule_entry(loop.name, trigger.name)
            fields: dict[str, Any] = {"paused": paused}
            if not paused and isinstance(trigger, Cron | Every):
                anchor = entry.anchor if entry and entry.anchor is not None else now
                fields["next_due_at"] = _first_due(trigger, now, _seed(loop.name, trigger), anchor)
                fields["anchor"] = anchor if isinstance(trigger, Every) else None
            await self.store.set_schedule(loop.name, trigger.name, spec=spec_of(trigger), **fields)
        self._changed.set()
        return [trigger.name for trigger in triggers]

    def _loop(self, name: str) -> LoopConfig:
        if self.config is None:
            raise LooptuiError("no configuration loaded")
        return self.config.loop(name)

    async def _tick(self) -> None:
        """Sleep until the earliest time trigger is due, fire what is due, and again."""
        while True:
            self._changed.clear()
            due_at = await self._fire_due()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(due_at))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()

    async def _fire_due(self) -> float:
        """Fire every time trigger now due; returns when the next one is (inf: none)."""
        now = self.clock.now()
        earliest = math.inf
        entries = {(e.loop, e.trigger): e for e in await self.store.schedule()}
        for loop in self._loops():
            for trigger in loop.triggers:
                entry = entries.get((loop.name, trigger.name))
                if not isinstance(trigger, Cron | Every) or entry is None or entry.paused:
                    continue
                if entry.next_due_at is None:
                    continue
                if entry.next_due_at > now:
                    earliest = min(earliest, entry.next_due_at)
                    continue
                seed = _seed(loop.name, trigger)
                due = [
                    entry.next_due_at,
                    *due_between(trigger, entry.next_due_at, now, seed, anchor=entry.anchor),
                ]
                upcoming = next_fire(trigger, now, seed, anchor=entry.anchor)
                # the next fire time is stored before the firing is: a crash between the two
                # loses this firing rather than firing it twice
                await self.store.set_schedule(
                    loop.name, trigger.name, next_due_at=_finite(upcoming)
                )
                earliest = min(earliest, upcoming)
                await self._fire_time(loop, trigger, due, now)
        return earliest

    async def _fire_time(
        self, loop: LoopConfig, trigger: Trigger, due: list[float], now: float
    ) -> None:
        fired_by = describe(trigger)
        payload: dict[str, Any]
        if len(due) == 1 and now - due[0] <= LATE_TOLERANCE:
            payload = {"fired_by": f"{fired_by}, due {_clock_time(due[0])}"}
            self._spawn(self.fire(loop.name, trigger.name, payload, due_at=due[0]))
            return
        catch_up = on_catch_up(loop.policy, due, now)
        if catch_up.missed:
            missed = [when for when in due if when != catch_up.fire]
            await self.store.record_firing(
                loop.name,
                trigger.name,
                due_at=missed[-1],
                fired_at=now,
                payload={
                    "fired_by": fired_by,
                    "missed": len(missed),
                    "first_due": missed[0],
                    "last_due": missed[-1],
                    "catch_up": loop.policy.catch_up,
                },
                outcome=Outcome.MISSED,
                reason=_missed_reason(
                    loop, len(missed), missed[-1], now, catch_up.fire is not None
                ),
            )
        if catch_up.fire is not None:
            payload = {
                "fired_by": f"{fired_by}, caught up: due {_clock_time(catch_up.fire)}",
                "caught_up": True,
            }
            self._spawn(self.fire(loop.name, trigger.name, payload, due_at=catch_up.fire))

    # -- firing ------------------------------------------------------------------------------

    async def fire(
        self,
        loop_name: str,
        trigger_name: str = MANUAL,
        payload: Mapping[str, Any] | None = None,
        due_at: float | None = None,
    ) -> Firing:
        """Fire a loop: the one path of every trigger and of `looptui fire`. Returns the
        firing as the ledger holds it once its policy decided (pending while its run starts
        or waits)."""
        loop = self._loop(loop_name)
        now = self.clock.now()
        due_at = now if due_at is None else due_at
        payload = dict(payload or {})
        payload.setdefault("fired_by", "looptui fire" if trigger_name == MANUAL else trigger_name)
        async with self._lock(loop.name):
            active = await self._active(loop.name)
            waiting = await self.store.pending_firings(loop.name, queued=True)
            decision = on_fire(loop.policy, due_at, active, waiting[0].id if waiting else None)
            if decision.action is Action.SKIP:
                firing_id = await self.store.record_firing(
                    loop.name,
                    trigger_name,
                    due_at=due_at,
                    fired_at=now,
                    payload=payload,
                    outcome=Outcome.SKIPPED,
                    reason=decision.reason,
                )
            elif decision.action is Action.COALESCE:
                assert decision.into is not None
                firing_id = await self.store.record_firing(
                    loop.name,
                    trigger_name,
                    due_at=due_at,
                    fired_at=now,
                    payload=payload,
                    outcome=Outcome.COALESCED,
                    coalesced_into=decision.into,
                    reason=decision.reason,
                )
                await self._merge_into(decision.into, payload)
                if not active:  # it joined a queue that may start now
                    self._spawn(self._drain(loop.name))
            else:
                firing_id = await self.store.record_firing(
                    loop.name, trigger_name, due_at=due_at, fired_at=now, payload=payload
                )
                if decision.action is Action.REPLACE:
                    for run in active:
                        with contextlib.suppress(LooptuiError):  # it may have ended since
                            await self.engine.stop(run.run_id)
                if decision.action in (Action.START, Action.REPLACE):
                    await self._start(loop, firing_id, due_at, payload)
        return await self.store.firing(firing_id)

    def _lock(self, loop_name: str) -> asyncio.Lock:
        return self._locks.setdefault(loop_name, asyncio.Lock())

    async def _active(self, loop_name: str) -> list[Active]:
        """The runs of the loop being driven now, by hand or by a firing."""
        driven = set(self.engine.active_run_ids())
        runs = await self.store.runs([RunStatus.QUEUED, RunStatus.RUNNING])
        active = []
        for run in runs:
            if run.loop != loop_name or run.id not in driven:
                continue
            started = self._runs.get(run.id)
            active.append(
                Active(run.id, started.firing_id, started.due_at) if started else Active(run.id)
            )
        return active

    async def _merge_into(self, firing_id: int, payload: Mapping[str, Any]) -> None:
        """Fold what a coalesced firing carried into the firing it joined: the changed paths
        add up, the newest commit wins; nothing a watcher saw is lost."""
        target = await self.store.firing(firing_id)
        if target.outcome is not Outcome.PENDING or target.run_id is not None:
            return  # its run already has its prompt
        merged = dict(target.payload)
        paths = list(merged.get("changed_paths") or ())
        paths += [p for p in payload.get("changed_paths") or () if p not in paths]
        if paths:
            merged["changed_paths"] = paths
        for key in ("commit", "previous_run", "previous_verdict"):
            if payload.get(key):
                merged[key] = payload[key]
        merged["coalesced"] = int(merged.get("coalesced", 0)) + 1
        await self.store.set_firing_payload(firing_id, merged)

    async def _start(
        self, loop: LoopConfig, firing_id: int, due_at: float, payload: Mapping[str, Any]
    ) -> None:
        """Ask the preconditions, then start the run; the firing stays pending until the
        run's first iteration begins."""
        try:
            base_branch = loop.base or self.engine.repository.current_branch()
            base_commit = await asyncio.to_thread(self.engine.repository.branch_commit, base_branch)
            why = await nothing_to_do(
                loop, base_commit, self.engine.checkouts, self.engine.environ, payload
            )
            if why is not None:
                await self.store.settle_firing(firing_id, Outcome.NOTHING_TO_DO, reason=why)
                return
            run = await self.engine.start_run(loop.name, fired=payload)
        except LooptuiError as exc:
            await self.store.settle_firing(firing_id, Outcome.FAILED, reason=str(exc))
            return
        self._runs[run.id] = _Started(firing_id, due_at)
        with contextlib.suppress(LookupError):  # its first iteration may have settled it
            await self.store.link_firing(firing_id, run.id)

    async def _drain(self, loop_name: str) -> None:
        """Start the loop's queued firing, if it has one and a run may start."""
        if self.config is None or loop_name not in self.config.loops:
            return
        loop = self.config.loop(loop_name)
        async with self._lock(loop_name):
            waiting = await self.store.pending_firings(loop_name, queued=True)
            if not waiting:
                return
            active = await self._active(loop_name)
            decision = on_fire(loop.policy, waiting[0].due_at, active, None)
            if decision.action is Action.START:
                first = waiting[0]
                await self._start(loop, first.id, first.due_at, first.payload)

    # -- what the runs do --------------------------------------------------------------------

    async def _follow(self, feed: Any) -> None:
        try:
            while (batch := await feed.next_batch()) is not None:
                for event in batch:
                    await self._on_event(event)
        finally:
            feed.close()

    async def _on_event(self, event: Event) -> None:
        payload = event.payload
        started = self._runs.get(event.run_id)
        if isinstance(payload, IterationMarked) and payload.phase == "started":
            if started is not None:
                await self._settle_started(started.firing_id, event.run_id)
            return
        if not isinstance(payload, StatusChanged) or payload.status.is_active:
            return
        if started is not None:  # it ended before its first iteration began
            self._runs.pop(event.run_id, None)
            firing = await self.store.firing(started.firing_id)
            if firing.outcome is Outcome.PENDING:
                await self.store.settle_firing(
                    started.firing_id,
                    Outcome.FAILED,
                    reason=payload.error or f"the run ended {payload.status} before its first turn",
                )
        try:
            run = await self.store.run(event.run_id)
        except LooptuiError:
            return
        if run.status.is_active:  # resumed since: it has not ended
            return
        await self._fire_after(run.id, run.loop, payload.status)
        self._spawn(self._drain(run.loop))

    async def _settle_started(self, firing_id: int, run_id: str) -> None:
        firing = await self.store.firing(firing_id)
        if firing.outcome is Outcome.PENDING:
            await self.store.settle_firing(firing_id, Outcome.STARTED, run_id=run_id)

    async def _fire_after(self, run_id: str, loop_name: str, status: RunStatus) -> None:
        """Fire the loops chained after `loop_name` whose statuses include `status`."""
        for loop in self._loops():
            for trigger in loop.triggers:
                if not isinstance(trigger, After) or trigger.loop != loop_name:
                    continue
                if status not in trigger.statuses:
                    continue
                entry = await self.store.schedule_entry(loop.name, trigger.name)
                if entry is not None and entry.paused:
                    continue
                verdicts = await self.store.verdicts(run_id)
                payload = {
                    "fired_by": f"{describe(trigger)}: run {run_id} {status}",
                    "previous_run": {"id": run_id, "loop": loop_name, "status": str(status)},
                    "previous_verdict": _verdict_text(verdicts[-1]) if verdicts else "",
                }
                self._spawn(self.fire(loop.name, trigger.name, payload))

    async def _settle_leftovers(self) -> None:
        """Firings the last service left starting: settled by what became of their run, or
        followed until their run's first iteration begins."""
        for firing in await self.store.pending_firings(queued=False):
            assert firing.run_id is not None
            try:
                run = await self.store.run(firing.run_id)
            except LooptuiError:
                await self.store.settle_firing(firing.id, Outcome.FAILED, reason="its run is gone")
                continue
            iterations = await self.store.iterations(run.id)
            if iterations:
                await self.store.settle_firing(firing.id, Outcome.STARTED, run_id=run.id)
            elif run.status.is_active:
                self._runs[run.id] = _Started(firing.id, firing.due_at)
            else:
                await self.store.settle_firing(
                    firing.id,
                    Outcome.FAILED,
                    reason=run.error or f"the run ended {run.status} before its first turn",
                )


def _seed(loop_name: str, trigger: Trigger) -> str:
    return f"{loop_name}/{trigger.name}"


def _first_due(trigger: Trigger, now: float, seed: str, anchor: float | None) -> float | None:
    if not isinstance(trigger, Cron | Every):
        return None
    return _finite(next_fire(trigger, now, seed, anchor=anchor))


def _finite(when: float) -> float | None:
    return None if math.isinf(when) else when


def _clock_time(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def _missed_reason(loop: LoopConfig, count: int, last: float, now: float, caught_up: bool) -> str:
    times = "1 fire time" if count == 1 else f"{count} fire times"
    if caught_up:
        return (
            f"{times} passed while the service was down; the newest runs once (catch_up = run_once)"
        )
    if loop.policy.catch_up == "run_once":
        hours = (now - last) / 3600
        return (
            f"{times} passed while the service was down; the newest is {hours:.1f} h old, "
            "past catch_up_max_age"
        )
    return f"{times} passed while the service was down (catch_up = skip)"


def _verdict_text(verdict: Any) -> str:
    word = "done" if verdict.done else "not done"
    reasons = "; ".join(verdict.reasons[:3])
    return f"{word}" + (f": {reasons}" if reasons else "")


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("a scheduler task failed", exc_info=task.exception())
