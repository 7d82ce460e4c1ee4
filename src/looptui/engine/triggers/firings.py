"""Every firing's one path, and what the scheduler learns from the runs it started.

Whatever fired a loop (a time, a file, a commit, another loop's run, or `looptui fire`), the
firing is written to the ledger first, then the loop's policy decides under the loop's
lock, so that two triggers at one instant see each other. A firing counts as started only
once its run's first iteration began: that, and every run's end (which fires the loops
chained after it and drains the loop's queue), come from the engine's event feed, as any
client would see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from looptui.engine.config import Config, LoopConfig
from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus, Verdict
from looptui.engine.store.feed import Feed
from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.triggers.clock import Clock
from looptui.engine.triggers.describe import describe, spec_of
from looptui.engine.triggers.model import After, Cron, Every
from looptui.engine.triggers.next_fire import first_due, seed_of
from looptui.engine.triggers.policy import Action, Active, on_fire
from looptui.engine.triggers.preconditions import asks_the_base, nothing_to_do
from looptui.protocol.events import Event, HookRan, IterationMarked, StatusChanged

if TYPE_CHECKING:  # the engine owns its firings
    from looptui.engine.supervisor import Engine

logger = logging.getLogger(__name__)

MANUAL = "manual"  # the trigger name of `looptui fire`


@dataclass(frozen=True)
class _Started:
    firing_id: int
    due_at: float
    trigger: str


class Firings:
    """Fires the loops of one engine and follows the runs the firings started.

    On its own (an engine with no service) it fires only when asked (`looptui fire`); the
    service's `Scheduler` adds the triggers that fire by themselves."""

    timed = False  # whether time and event triggers fire (only the service's scheduler)

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._runs: dict[str, _Started] = {}  # run id -> the firing that started it
        self._refused: set[str] = set()  # runs whose run_start hook refused them
        self._replaced: dict[str, int] = {}  # runs stopped by a replace -> the new firing
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: list[asyncio.Task[None]] = []

    @property
    def following(self) -> bool:
        """Whether it follows the runs (`start` was called)."""
        return bool(self._main)

    async def start(self, drain: bool = True) -> None:
        """Settle the firings the last process left starting, follow the runs from now
        on, and (`drain`) start the queued firings it left."""
        after = await self.store.last_event_id()
        await self._settle_leftovers()
        self._keep(self._follow(self.engine.subscribe(None, after)), "firings-feed")
        for loop in self._loops() if drain else ():
            self.spawn(self._drain(loop.name))

    async def close(self) -> None:
        """Stop firing; runs already started go on (the engine decides their fate)."""
        for task in [*self._main, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._main, *self._tasks, return_exceptions=True)
        self._main = []

    def _keep(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """A task that lives as long as this object does."""
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(log_failure)
        self._main.append(task)

    @property
    def config(self) -> Config | None:
        return self.engine.config

    def _loops(self) -> list[LoopConfig]:
        return list(self.config.loops.values()) if self.config else []

    def _loop(self, name: str) -> LoopConfig:
        if self.config is None:
            raise LooptuiError("no configuration loaded")
        return self.config.loop(name)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine as this object's task: a firing in flight outlives the watcher or
        timer that made it, until `close`."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(log_failure)

    async def idle(self) -> None:
        """Wait until the firings in flight are settled or started (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the schedule's pauses -------------------------------------------------------------

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
        if not triggers:
            known = ", ".join(t.name for t in loop.triggers) or "none"
            what = f"no trigger {trigger_name!r}" if trigger_name else "no triggers"
            raise LooptuiError(f"loop {loop_name} has {what} (triggers: {known})")
        now = self.clock.now()
        for trigger in triggers:
            entry = await self.store.schedule_entry(loop.name, trigger.name)
            fields: dict[str, Any] = {"paused": paused}
            if not paused and isinstance(trigger, Cron | Every):
                anchor = entry.anchor if entry and entry.anchor is not None else now
                fields["next_due_at"] = first_due(trigger, now, seed_of(loop.name, trigger), anchor)
                fields["anchor"] = anchor if isinstance(trigger, Every) else None
            await self.store.set_schedule(loop.name, trigger.name, spec=spec_of(trigger), **fields)
        self._schedule_changed()
        return [trigger.name for trigger in triggers]

    def _schedule_changed(self) -> None:
        """The stored schedule changed (the service's timer looks at it again)."""

    # -- firing ------------------------------------------------------------------------------

    async def fire(
        self,
        loop_name: str,
        trigger_name: str = MANUAL,
        payload: Mapping[str, Any] | None = None,
        due_at: float | None = None,
        firing_id: int | None = None,
    ) -> Firing:
        """Fire a loop: the one path of every trigger and of `looptui fire`. The firing is a
        row before anything happens (`firing_id`: recorded already, with the trigger's next
        fire time); then the loop's policy decides. Returns the firing as the ledger holds
        it once decided (pending while its run starts or waits)."""
        try:
            loop = self._loop(loop_name)
        except LooptuiError as exc:  # the loop left the config since the firing was recorded
            if firing_id is not None:
                await self.store.settle_firing(firing_id, Outcome.FAILED, reason=str(exc))
            raise
        now = self.clock.now()
        due_at = now if due_at is None else due_at
        payload = dict(payload or {})
        payload.setdefault("fired_by", "looptui fire" if trigger_name == MANUAL else trigger_name)
        async with self._lock(loop.name):
            if firing_id is None:
                firing_id = await self.store.record_firing(
                    loop.name, trigger_name, due_at=due_at, fired_at=now, payload=payload
                )
            firing = await self.store.firing(firing_id)
            if firing.outcome is not Outcome.PENDING or firing.run_id is not None:
                return firing  # a queue's drain took it first
            active = await self._active(loop.name)
            waiting = [
                f.id
                for f in await self.store.pending_firings(loop.name, queued=True)
                if f.id != firing_id
            ]
            queued = waiting[0] if waiting else None
            decision = on_fire(loop.policy, due_at, active, queued, trigger_name)
            if decision.action is Action.SKIP:
                await self.store.settle_firing(firing_id, Outcome.SKIPPED, reason=decision.reason)
            elif decision.action is Action.COALESCE:
                assert decision.into is not None
                await self.store.settle_firing(
                    firing_id,
                    Outcome.COALESCED,
                    coalesced_into=decision.into,
                    reason=decision.reason,
                )
                await self._merge_into(decision.into, payload)
                if not active:  # it joined a queue that may start now
                    self.spawn(self._drain(loop.name))
            elif decision.action in (Action.START, Action.REPLACE):
                if decision.action is Action.REPLACE:
                    for run in active:
                        self._replaced[run.run_id] = firing_id
                        with contextlib.suppress(LooptuiError):  # it may have ended since
                            await self.engine.stop(
                                run.run_id,
                                reason=f"replaced by firing #{firing_id} (overlap = replace)",
                            )
                await self._start(loop, firing_id, due_at, payload, trigger_name)
            # QUEUE: it stays pending with no run, the loop's one waiting firing
        return await self.store.firing(firing_id)

    def _lock(self, loop_name: str) -> asyncio.Lock:
        return self._locks.setdefault(loop_name, asyncio.Lock())

    async def _active(self, loop_name: str) -> list[Active]:
        """The runs of the loop being driven now, by hand or by a firing, and those a usage
        limit deferred: another run now would meet the same limit."""
        driven = set(self.engine.active_run_ids())
        runs = await self.store.runs([RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DEFERRED])
        active = []
        for run in runs:
            if run.loop != loop_name:
                continue
            if run.status is not RunStatus.DEFERRED and run.id not in driven:
                continue
            started = self._runs.get(run.id)
            active.append(
                Active(run.id, started.firing_id, started.due_at, started.trigger)
                if started
                else Active(run.id)
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
        self,
        loop: LoopConfig,
        firing_id: int,
        due_at: float,
        payload: Mapping[str, Any],
        trigger: str,
    ) -> None:
        """Ask the preconditions, then start the run; the firing stays pending until the
        run's first iteration begins."""
        run_id: str | None = None
        try:
            if asks_the_base(loop):
                repository = self.engine.repository
                base_branch = loop.base or repository.current_branch()
                base_commit = await asyncio.to_thread(repository.branch_commit, base_branch)
                why = await nothing_to_do(
                    loop, base_commit, self.engine.checkouts, self.engine.environ, payload
                )
                if why is not None:
                    await self.store.settle_firing(firing_id, Outcome.NOTHING_TO_DO, reason=why)
                    return
            # the firing names its run before the run exists: a crash in between leaves a
            # firing whose run is gone (settled as such), never a run no firing names
            run_id = await self.engine.new_run_id()
            self._runs[run_id] = _Started(firing_id, due_at, trigger)
            await self.store.link_firing(firing_id, run_id)
            await self.engine.start_run(loop.name, fired=payload, run_id=run_id)
        except LooptuiError as exc:
            if run_id is not None:  # no run was made
                self._runs.pop(run_id, None)
                await self.store.link_firing(firing_id, None)
            await self.store.settle_firing(firing_id, Outcome.FAILED, reason=str(exc))

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
                await self._start(loop, first.id, first.due_at, first.payload, first.trigger)

    # -- what the runs do --------------------------------------------------------------------

    async def _follow(self, feed: Feed) -> None:
        try:
            while (batch := await feed.next_batch()) is not None:
                for event in batch:
                    try:
                        await self._on_event(event)
                    except Exception:  # one event must not stop the scheduler
                        logger.exception("the scheduler could not act on event %s", event.id)
        finally:
            feed.close()

    async def _on_event(self, event: Event) -> None:
        payload = event.payload
        started = self._runs.get(event.run_id)
        if isinstance(payload, IterationMarked) and payload.phase == "started":
            if started is not None:  # (again, after a deferral)
                await self._settle_started(started.firing_id, event.run_id)
            return
        if isinstance(payload, HookRan) and payload.blocked and payload.hook == "run_start":
            if started is not None:
                self._refused.add(event.run_id)
            return
        if not isinstance(payload, StatusChanged) or payload.status.is_active:
            return
        if payload.status is RunStatus.DEFERRED:  # not ended: parked until the limit resets
            if started is not None:
                await self.store.settle_firing(
                    started.firing_id,
                    Outcome.DEFERRED,
                    run_id=event.run_id,
                    reason=payload.error,
                    retry_at=payload.retry_at or self.clock.now(),
                )
            return
        if started is not None:
            self._runs.pop(event.run_id, None)
            await self._settle_ended(started.firing_id, event.run_id, payload)
        try:
            run = await self.store.run(event.run_id)
        except LooptuiError:
            return
        if run.status.is_active:  # resumed since: it has not ended
            return
        await self._fire_after(run.id, run.loop, payload.status)
        self.spawn(self._drain(run.loop))

    async def _settle_started(self, firing_id: int, run_id: str) -> None:
        firing = await self.store.firing(firing_id)
        if firing.outcome in (Outcome.PENDING, Outcome.DEFERRED):
            await self.store.settle_firing(firing_id, Outcome.STARTED, run_id=run_id)

    async def _settle_ended(self, firing_id: int, run_id: str, ended: StatusChanged) -> None:
        """A run ended: its firing, if still pending, never saw its first turn (a hook
        refused it, or it failed or was stopped before); one that was deferred did start."""
        firing = await self.store.firing(firing_id)
        refused = run_id in self._refused
        self._refused.discard(run_id)
        replaced_by = self._replaced.pop(run_id, None)
        if firing.outcome is Outcome.DEFERRED:
            await self.store.settle_firing(firing_id, Outcome.STARTED, run_id=run_id)
        elif firing.outcome is Outcome.PENDING and replaced_by is not None:
            await self.store.settle_firing(
                firing_id,
                Outcome.COALESCED,
                coalesced_into=replaced_by,
                reason=f"replaced by firing #{replaced_by} before its first turn",
            )
        elif firing.outcome is Outcome.PENDING:
            reason = ended.error or f"the run ended {ended.status} before its first turn"
            outcome = Outcome.REFUSED if refused else Outcome.FAILED
            await self.store.settle_firing(firing_id, outcome, run_id=run_id, reason=reason)

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
                    "previous_verdict": _verdict_text(verdicts[-1][1]) if verdicts else "",
                }
                self.spawn(self.fire(loop.name, trigger.name, payload))

    async def _settle_leftovers(self) -> None:
        """Firings the last service left starting: settled by what became of their run, or
        followed until their run's first iteration begins."""
        for firing in await self.store.firings_with(Outcome.DEFERRED):
            if firing.run_id is not None:  # followed until its run goes on and ends
                self._runs[firing.run_id] = _Started(firing.id, firing.due_at, firing.trigger)
        for firing in await self.store.pending_firings(queued=False):
            assert firing.run_id is not None
            try:
                run = await self.store.run(firing.run_id)
            except LooptuiError:
                await self.store.link_firing(firing.id, None)
                await self.store.settle_firing(
                    firing.id, Outcome.FAILED, reason="the service stopped before its run began"
                )
                continue
            iterations = await self.store.iterations(run.id)
            if iterations:
                await self.store.settle_firing(firing.id, Outcome.STARTED, run_id=run.id)
            elif run.status.is_active:
                self._runs[run.id] = _Started(firing.id, firing.due_at, firing.trigger)
            else:
                await self.store.settle_firing(
                    firing.id,
                    Outcome.FAILED,
                    reason=run.error or f"the run ended {run.status} before its first turn",
                )


def _verdict_text(verdict: Verdict) -> str:
    word = "done" if verdict.done else "not done"
    reasons = "; ".join(verdict.reasons[:3])
    return f"{word}" + (f": {reasons}" if reasons else "")


def log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("a scheduler task failed", exc_info=task.exception())
