"""When a time trigger fires next: pure functions of the trigger and a time.

Nothing here reads the clock, so a restart that hands in the same times computes the same
schedule, and the scheduler's tests can check a year of firings without waiting.

Cron expressions are read in the trigger's IANA zone. A daily time that the zone skips
when the clocks go forward (02:30 in Paris on 29 March 2026) does not fire that day; one
that happens twice when they go back fires once, at its first occurrence. An expression
with a wildcard minute or hour (`*/5 * * * *`, `30 * * * *`) follows real time, as Debian
cron does: every five real minutes, through both passes of a repeated hour.

`Every` fires at `anchor + k * interval` for k = 1, 2, ..., where `anchor` is when its
schedule started (stored, so a restart keeps the phase), each time delayed by a jitter in
[0, jitter) drawn from (seed, k): the same slot gets the same jitter after a restart.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim

from looptui.engine.triggers.model import Cron, Every, Trigger

# `due_between` stops after this many fire times unless told otherwise: enough to say
# "missed 1000+" while the service was down, without listing a month of minutes.
DEFAULT_DUE_LIMIT = 1000


def next_fire(
    trigger: Cron | Every, after: float, seed: str = "", *, anchor: float | None = None
) -> float:
    """The first time strictly after `after` (epoch seconds) at which `trigger` fires.

    `seed` names the trigger (its loop and name, say) so that its jitter is its own;
    `anchor` is when an `Every` schedule started, and is required for one. Returns
    `math.inf` for a cron expression that never fires again.
    """
    return next(_fire_times(trigger, after, seed, anchor), math.inf)


def due_between(
    trigger: Cron | Every,
    start: float,
    end: float,
    seed: str = "",
    *,
    anchor: float | None = None,
    limit: int = DEFAULT_DUE_LIMIT,
) -> list[float]:
    """The fire times in (start, end], earliest first, at most `limit` of them.

    What fell due while the service was down: a list of `limit` items means "at least
    that many", so a long outage costs `limit` steps, not one per minute missed.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative ({limit})")
    due: list[float] = []
    if limit == 0:
        return due
    for when in _fire_times(trigger, start, seed, anchor):
        if when > end:
            break
        due.append(when)
        if len(due) == limit:
            break
    return due


def every_fire_time(trigger: Every, anchor: float, k: int, seed: str = "") -> float:
    """The time of the `k`-th firing (k >= 1) of an `Every` whose schedule began at
    `anchor`: its slot `anchor + k * interval` plus the slot's jitter."""
    return anchor + k * trigger.interval_seconds + _jitter(seed, k, trigger.jitter_seconds)


def _fire_times(
    trigger: Cron | Every, after: float, seed: str, anchor: float | None
) -> Iterator[float]:
    if isinstance(trigger, Cron):
        return _cron_times(trigger, after)
    if anchor is None:
        raise ValueError(f"an `every` trigger ({trigger.name}) needs the anchor of its schedule")
    return _every_times(trigger, after, anchor, seed)


def _cron_times(trigger: Cron, after: float) -> Iterator[float]:
    zone = ZoneInfo(trigger.timezone)
    schedule = CronSim(trigger.expression, datetime.fromtimestamp(after, zone))
    for local in schedule:  # cronsim stops (StopIteration) after 50 years with no match
        # For a fixed minute and hour, cronsim moves a time the zone skips to the first
        # minute after the gap (Debian cron runs the job late); such a time no longer
        # matches the expression, and here it is skipped instead.
        if local.minute not in schedule.minutes or local.hour not in schedule.hours:
            continue
        when = local.timestamp()
        # cronsim reads a fixed time on the local wall clock, so from the second pass of
        # a repeated hour it can name the first pass, which has already fired.
        if when > after:
            yield when


def _every_times(trigger: Every, after: float, anchor: float, seed: str) -> Iterator[float]:
    interval = trigger.interval_seconds
    jitter = trigger.jitter_seconds
    # The first slot whose latest possible jittered time is past `after`; one step back
    # covers a floor that float rounding put one slot too far.
    k = max(1, math.floor((after - jitter - anchor) / interval))
    while True:
        when = every_fire_time(trigger, anchor, k, seed)
        if when > after:
            yield when
        k += 1


def _jitter(seed: str, k: int, jitter_seconds: float) -> float:
    """A delay in [0, jitter_seconds) fixed by (seed, k): random-looking, so that loops
    with the same interval spread out, yet the same after every restart."""
    if jitter_seconds <= 0:
        return 0.0
    digest = hashlib.sha256(f"{seed}\x00{k}".encode()).digest()
    fraction = (int.from_bytes(digest[:8], "big") >> 11) / 2**53  # 53 bits: exactly < 1
    # The product can still round up to the bound itself, which the interval excludes.
    return min(fraction * jitter_seconds, math.nextafter(jitter_seconds, 0.0))


def seed_of(loop_name: str, trigger: Trigger) -> str:
    """The seed of a trigger's jitter: its loop and name, its own among all triggers."""
    return f"{loop_name}/{trigger.name}"


def first_due(trigger: Trigger, now: float, seed: str, anchor: float | None) -> float | None:
    """When a trigger scheduled at `now` fires first; None for an event trigger or a cron
    expression that never fires again."""
    if not isinstance(trigger, Cron | Every):
        return None
    return finite(next_fire(trigger, now, seed, anchor=anchor))


def finite(when: float) -> float | None:
    """A fire time as stored: `math.inf` (never) is None."""
    return None if math.isinf(when) else when
