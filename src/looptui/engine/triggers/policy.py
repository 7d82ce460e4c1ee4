"""What a firing does, decided from the loop's policy and what is going on: pure functions.

The scheduler asks `on_fire` when a trigger fires and `on_catch_up` for what fell due while
the service was down; it records the answer in the ledger and only then acts on it. Nothing
here reads the clock or the store, so every case is a one-line test.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from looptui.engine.triggers.model import Policy

# Two firings of one loop at most this far apart are "the same instant": a cron and an
# interval both due at 03:00, or a commit and the file changes it made. The second folds
# into the first instead of starting a second run.
SAME_INSTANT = 1.0
# A time trigger that fires this late is still on time (a busy loop, a slow disk); later
# than that, or past a second fire time, it was missed and the catch-up policy decides. A
# trigger due longer ago than this and not fired is shown as overdue.
LATE_TOLERANCE = 60.0


class Action(enum.Enum):
    """What becomes of a firing."""

    START = "start"  # start a run now
    SKIP = "skip"  # a run is going and the policy skips
    QUEUE = "queue"  # wait for the active run to end, as the loop's one waiting firing
    COALESCE = "coalesce"  # fold into the waiting firing, or the one that just started a run
    REPLACE = "replace"  # stop the active runs (their work is kept), then start


@dataclass(frozen=True)
class Active:
    """A run of the loop being driven, and the firing that started it (None: by hand)."""

    run_id: str
    firing_id: int | None = None
    fired_due_at: float | None = None  # the due time of that firing
    fired_by: str | None = None  # the trigger of that firing


@dataclass(frozen=True)
class Decision:
    action: Action
    into: int | None = None  # COALESCE: the firing it folds into
    reason: str = ""


def on_fire(
    policy: Policy,
    due_at: float,
    active: Sequence[Active],
    waiting: int | None,
    trigger: str | None = None,
) -> Decision:
    """What a firing of `trigger` due at `due_at` does, given the loop's active runs and its
    queued firing (`waiting`, or None)."""
    for run in active:  # two triggers at one instant start one run (one trigger twice: two)
        if (
            run.firing_id is not None
            and run.fired_due_at is not None
            and run.fired_by != trigger
            and abs(run.fired_due_at - due_at) <= SAME_INSTANT
        ):
            return Decision(Action.COALESCE, run.firing_id, f"fired with run {run.run_id}")
    if not active:
        if waiting is not None:  # the queue drains first; this one joins it
            return Decision(Action.COALESCE, waiting, "a firing is already waiting")
        return Decision(Action.START)
    limit = concurrency_limit(policy)
    if policy.overlap == "parallel" and len(active) < limit:
        return Decision(Action.START)
    names = ", ".join(run.run_id for run in active)
    if policy.overlap == "skip":
        return Decision(Action.SKIP, reason=f"run {names} is still going (overlap = skip)")
    if policy.overlap == "replace":
        return Decision(Action.REPLACE, reason=f"replaces run {names}")
    # queue, and parallel at its limit: one waiting firing, later ones folded into it
    if waiting is not None:
        return Decision(Action.COALESCE, waiting, "a firing is already waiting")
    return Decision(Action.QUEUE, reason=f"waits for run {names}")


def concurrency_limit(policy: Policy) -> int:
    """How many runs of the loop may go at once: one, unless it runs in parallel; never
    more than its `max_concurrent`."""
    limit = (policy.parallel_max or 1) if policy.overlap == "parallel" else 1
    if policy.max_concurrent is not None:
        limit = min(limit, policy.max_concurrent)
    return max(limit, 1)


@dataclass(frozen=True)
class CatchUp:
    """What to do about the fire times a trigger missed: fire once for the newest (`fire`
    set to its due time), and record the rest as missed in one ledger row."""

    fire: float | None
    missed: int  # the fire times recorded as missed (the one fired is not among them)


def on_catch_up(policy: Policy, due: Sequence[float], now: float) -> CatchUp:
    """`due`: the fire times that passed while nothing fired them, earliest first. Never
    more than one run, whatever the outage: `run_once` fires the newest if it is at most
    `catch_up_max_age` old; `skip` fires none."""
    if not due:
        return CatchUp(None, 0)
    newest = due[-1]
    if policy.catch_up == "run_once" and now - newest <= policy.catch_up_max_age:
        return CatchUp(newest, len(due) - 1)
    return CatchUp(None, len(due))
