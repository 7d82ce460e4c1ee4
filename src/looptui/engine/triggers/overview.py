"""The loops as `looptui loops` and the TUI's loops view show them: each trigger with its
next fire time (or why it will not fire), and the loop's last firings from the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from looptui.engine.config import Config
from looptui.engine.store.ledger import Firing, Ledger, Outcome, ScheduleEntry
from looptui.engine.triggers.describe import describe
from looptui.engine.triggers.model import Cron, Every, Trigger
from looptui.engine.triggers.next_fire import next_fire, seed_of
from looptui.engine.triggers.policy import LATE_TOLERANCE

RECENT_FIRINGS = 5


@dataclass(frozen=True)
class TriggerState:
    name: str
    kind: str
    description: str  # `cron "0 3 * * *" (UTC)`, `watch src/**`
    paused: bool
    next_due_at: float | None  # time triggers only
    overdue: bool  # due and not fired (see `overdue`)
    known: bool = True  # in the stored schedule (a trigger no service has seen yet is not)


@dataclass(frozen=True)
class LoopState:
    name: str
    triggers: tuple[TriggerState, ...]
    firings: tuple[Firing, ...]  # the newest, newest first
    waiting: int | None  # the loop's queued firing
    active_runs: tuple[str, ...]
    scheduled: bool  # a scheduler fires its triggers now (the service runs)


async def loop_states(
    config: Config | None,
    ledger: Ledger,
    now: float,
    *,
    scheduled: bool,
    active: Iterable[tuple[str, str]] = (),
    recent: int = RECENT_FIRINGS,
) -> list[LoopState]:
    """Every configured loop's state; `active` holds (run id, loop) of the runs going."""
    if config is None:
        return []
    entries = {(entry.loop, entry.trigger): entry for entry in await ledger.schedule()}
    going = list(active)
    states = []
    for loop in config.loops.values():
        triggers = []
        for trigger in loop.triggers:
            entry = entries.get((loop.name, trigger.name))
            paused = entry.paused if entry is not None else trigger.paused
            due = entry.next_due_at if entry is not None else None
            triggers.append(
                TriggerState(
                    name=trigger.name,
                    kind=trigger.KIND,
                    description=describe(trigger),
                    paused=paused,
                    next_due_at=due,
                    overdue=not paused and overdue(loop.name, trigger, entry, now, scheduled),
                    known=entry is not None,
                )
            )
        firings = await ledger.firings(loop.name, recent)
        waiting = [
            f
            for f in await ledger.pending_firings(loop.name, queued=True)
            if f.outcome is Outcome.PENDING
        ]
        states.append(
            LoopState(
                name=loop.name,
                triggers=tuple(triggers),
                firings=tuple(firings),
                waiting=waiting[0].id if waiting else None,
                active_runs=tuple(run for run, name in going if name == loop.name),
                scheduled=scheduled,
            )
        )
    return states


def overdue(
    loop: str, trigger: Trigger, entry: ScheduleEntry | None, now: float, scheduled: bool
) -> bool:
    """Whether a time trigger's fire time passed and nobody fired it: at once when no
    scheduler runs, and otherwise once it is late by LATE_TOLERANCE or by its own period,
    whichever is shorter (an `every = "2s"` two seconds late is overdue)."""
    if entry is None or entry.next_due_at is None or not isinstance(trigger, Cron | Every):
        return False
    late = now - entry.next_due_at
    if not scheduled:
        return late > 0
    anchor = entry.anchor if entry.anchor is not None else entry.next_due_at
    upcoming = next_fire(trigger, entry.next_due_at, seed_of(loop, trigger), anchor=anchor)
    return late > min(LATE_TOLERANCE, upcoming - entry.next_due_at)
