"""The scheduler: the service's loops that run themselves (see docs/triggers.md).

It keeps every configured trigger's next fire time in the store, sleeps on its Clock until
the earliest, and fires what is due through the one path of `firings`. The schedule and the
queued firings are stored, so a restart resumes them; what fell due while the service was
down is settled by the loop's catch-up policy, at most one run per trigger.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from looptui.engine.config import LoopConfig
from looptui.engine.supervisor import Engine
from looptui.engine.triggers.clock import Clock, SystemClock
from looptui.engine.triggers.describe import describe, spec_of
from looptui.engine.triggers.firings import MANUAL, Firings
from looptui.engine.triggers.model import Cron, Every, Trigger
from looptui.engine.triggers.next_fire import due_between, finite, first_due, next_fire, seed_of
from looptui.engine.triggers.policy import LATE_TOLERANCE, on_catch_up
from looptui.service.watchers import Watchers


class Scheduler(Firings):
    """Fires the configured loops' triggers for one engine, until closed."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        super().__init__(engine, clock or SystemClock())
        self._changed = asyncio.Event()  # the schedule changed: the timer looks again
        self.watchers = Watchers(self)  # the file and branch triggers
        self._started_at = self.clock.now()  # fire times before this passed while it was down
        self._reconfiguring = asyncio.Lock()

    timed = True

    async def start(self, drain: bool = True) -> None:
        """Take up the schedule where the last service left it, then start firing."""
        self._started_at = self.clock.now()
        await super().start(drain)
        await self.sync()
        self._keep(self._tick(), "scheduler-timer")
        await self.watchers.start()
        await self.watchers.wait_ready()

    async def close(self) -> None:
        await self.watchers.close()
        await super().close()

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
                    next_due_at=first_due(trigger, now, seed_of(loop.name, trigger), anchor),
                    paused=trigger.paused,
                    anchor=anchor,
                    spec=spec,
                    last_tip=None,  # an edited `git` trigger takes the branch as it is now
                )
        self._schedule_changed()

    def reconfigure(self) -> None:
        """The config was reloaded: schedule new and edited triggers, watch what the config
        asks for now, and start what a changed policy now lets start (in the background)."""
        self.spawn(self._reconfigured())

    async def _reconfigured(self) -> None:
        async with self._reconfiguring:  # two reloads in a row: one set of watchers
            if self.watchers.wanted() == self.watchers.watching:
                await self.sync()
            else:  # stopped while the schedule changes, so no old look lands after it
                await self.watchers.close()
                await self.sync()
                await self.watchers.start()
        for loop in self._loops():
            self.spawn(self._drain(loop.name))

    def _schedule_changed(self) -> None:
        self._changed.set()

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
                seed = seed_of(loop.name, trigger)
                due = [
                    entry.next_due_at,
                    *due_between(trigger, entry.next_due_at, now, seed, anchor=entry.anchor),
                ]
                upcoming = next_fire(trigger, now, seed, anchor=entry.anchor)
                earliest = min(earliest, upcoming)
                await self._fire_time(loop, trigger, due, now, finite(upcoming))
        return earliest

    async def _fire_time(
        self,
        loop: LoopConfig,
        trigger: Trigger,
        due: list[float],
        now: float,
        upcoming: float | None,
    ) -> None:
        """Record what the due times become (one firing, or a catch-up: at most one firing and
        one row for the misses) together with the next fire time, then fire."""
        fired_by = describe(trigger)
        fire: tuple[float, dict[str, Any]] | None = None
        missed_row: tuple[float, dict[str, Any], str] | None = None
        if len(due) == 1 and now - due[0] <= LATE_TOLERANCE:
            fire = (due[0], {"fired_by": f"{fired_by}, due {_clock_time(due[0])}"})
        else:
            catch_up = on_catch_up(loop.policy, due, now)
            if catch_up.missed:
                missed = [when for when in due if when != catch_up.fire]
                payload = {
                    "fired_by": fired_by,
                    "missed": len(missed),
                    "first_due": missed[0],
                    "last_due": missed[-1],
                    "catch_up": loop.policy.catch_up,
                }
                down = missed[-1] < self._started_at
                reason = _missed_reason(
                    loop, len(missed), missed[-1], now, catch_up.fire is not None, down
                )
                missed_row = (missed[-1], payload, reason)
            if catch_up.fire is not None:
                text = f"{fired_by}, caught up: due {_clock_time(catch_up.fire)}"
                fire = (catch_up.fire, {"fired_by": text, "caught_up": True})
        firing_id = await self.store.record_due(
            loop.name,
            trigger.name,
            next_due_at=upcoming,
            fired_at=now,
            fire=fire,
            missed=missed_row,
        )
        if fire is not None:
            due_at, payload = fire
            self.spawn(self.fire(loop.name, trigger.name, payload, due_at, firing_id))


def _clock_time(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def _missed_reason(
    loop: LoopConfig, count: int, last: float, now: float, caught_up: bool, down: bool
) -> str:
    times = "1 fire time" if count == 1 else f"{count} fire times"
    passed = (
        f"{times} passed while the service was down"
        if down
        else f"{times} passed before the scheduler could fire them (the machine slept?)"
    )
    if caught_up:
        return f"{passed}; the newest runs once (catch_up = run_once)"
    if loop.policy.catch_up == "run_once":
        hours = (now - last) / 3600
        return f"{passed}; the newest is {hours:.1f} h old, past catch_up_max_age"
    return f"{passed} (catch_up = skip)"


__all__ = ["MANUAL", "Scheduler"]
