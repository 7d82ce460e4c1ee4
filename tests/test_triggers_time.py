"""Time triggers: next fire times for cron (with zones and DST) and every (phase, jitter),
what fell due in a window, and the clocks the scheduler waits on. Pure or on a FakeClock:
nothing here waits for real time."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from looptui.engine.triggers import Cron, Every
from looptui.engine.triggers.clock import Clock, FakeClock, SystemClock
from looptui.engine.triggers.next_fire import due_between, every_fire_time, next_fire

PARIS = ZoneInfo("Europe/Paris")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS, fold=fold).timestamp()


def in_paris(when: float) -> str:
    return datetime.fromtimestamp(when, PARIS).isoformat()


# Cron


def test_every_minute_in_utc_fires_at_the_next_whole_minute() -> None:
    trigger = Cron("* * * * *")
    assert next_fire(trigger, utc(2026, 5, 1, 12, 0, 30)) == utc(2026, 5, 1, 12, 1)
    # Strictly after: a time exactly on a fire time names the one after it.
    assert next_fire(trigger, utc(2026, 5, 1, 12, 1)) == utc(2026, 5, 1, 12, 2)
    assert next_fire(trigger, utc(2026, 5, 1, 12, 0, 59) + 0.999) == utc(2026, 5, 1, 12, 1)


def test_daily_in_utc_fires_today_or_tomorrow() -> None:
    trigger = Cron("0 3 * * *")
    assert next_fire(trigger, utc(2026, 5, 1, 2, 59)) == utc(2026, 5, 1, 3)
    assert next_fire(trigger, utc(2026, 5, 1, 3)) == utc(2026, 5, 2, 3)
    assert next_fire(trigger, utc(2026, 12, 31, 4)) == utc(2027, 1, 1, 3)


def test_a_zone_shifts_the_utc_fire_time_with_the_season() -> None:
    trigger = Cron("0 9 * * *", timezone="Europe/Paris")
    assert next_fire(trigger, utc(2026, 1, 15)) == utc(2026, 1, 15, 8)  # CET, UTC+1
    assert next_fire(trigger, utc(2026, 7, 15)) == utc(2026, 7, 15, 7)  # CEST, UTC+2


def test_a_local_time_the_clocks_skip_does_not_fire_that_day() -> None:
    trigger = Cron("30 2 * * *", timezone="Europe/Paris")
    due = due_between(trigger, paris(2026, 3, 27), paris(2026, 3, 31, 12))
    assert [in_paris(when) for when in due] == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        # 29 March: 02:00 jumps to 03:00, there is no 02:30, and no late run at 03:00.
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    assert next_fire(trigger, paris(2026, 3, 28, 3)) == paris(2026, 3, 30, 2, 30)


def test_a_skipped_hour_still_fires_the_hours_that_exist() -> None:
    trigger = Cron("0 2,3 * * *", timezone="Europe/Paris")
    due = due_between(trigger, paris(2026, 3, 28, 12), paris(2026, 3, 29, 12))
    assert [in_paris(when) for when in due] == ["2026-03-29T03:00:00+02:00"]


def test_a_local_time_that_happens_twice_fires_once() -> None:
    trigger = Cron("30 2 * * *", timezone="Europe/Paris")
    due = due_between(trigger, paris(2026, 10, 24, 12), paris(2026, 10, 26, 12))
    assert [in_paris(when) for when in due] == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30 (CEST); the second (CET) is not a fire
        "2026-10-26T02:30:00+01:00",
    ]
    # Asked from inside the repeated hour, after either 02:30 or between them: tomorrow.
    for after in (paris(2026, 10, 25, 2, 45), paris(2026, 10, 25, 2, 15, fold=1)):
        assert next_fire(trigger, after) == paris(2026, 10, 26, 2, 30)


def test_a_wildcard_hour_follows_real_time_through_the_change() -> None:
    trigger = Cron("*/20 * * * *", timezone="Europe/Paris")
    back = due_between(trigger, paris(2026, 10, 25, 1, 50), paris(2026, 10, 25, 3, 10))
    assert [b - a for a, b in itertools.pairwise(back)] == [1200.0] * (len(back) - 1)
    assert len(back) == 7  # 02:00, 02:20, 02:40 twice (CEST, then CET), and 03:00
    forward = due_between(trigger, paris(2026, 3, 29, 1, 30), paris(2026, 3, 29, 3, 30))
    assert [in_paris(when) for when in forward] == [
        "2026-03-29T01:40:00+01:00",
        "2026-03-29T03:00:00+02:00",  # twenty real minutes after 01:40
        "2026-03-29T03:20:00+02:00",
    ]


# Every


def test_every_fires_on_its_anchor_phase_strictly_after() -> None:
    trigger = Every(interval_seconds=900.0)
    anchor = 1_000_000.0
    assert next_fire(trigger, anchor, anchor=anchor) == anchor + 900
    assert next_fire(trigger, anchor + 899.5, anchor=anchor) == anchor + 900
    assert next_fire(trigger, anchor + 900, anchor=anchor) == anchor + 1800
    # Before the anchor (a clock set back): the first slot is still one interval in.
    assert next_fire(trigger, anchor - 5000, anchor=anchor) == anchor + 900


def test_every_keeps_its_phase_across_a_restart() -> None:
    trigger = Every(interval_seconds=600.0, jitter_seconds=30.0)
    anchor = utc(2026, 5, 1, 0, 0, 7)
    end = anchor + 6 * 3600 + 30  # the 36th slot plus its largest jitter
    before = due_between(trigger, anchor, end, "loop/every", anchor=anchor)
    # A restart three hours in (an odd second) computes the rest from the same anchor.
    restart_at = anchor + 3 * 3600 + 123.4
    after = due_between(trigger, restart_at, end, "loop/every", anchor=anchor)
    assert after == [when for when in before if when > restart_at]
    assert len(before) == 36
    # Without the stored anchor the phase would be lost: a schedule anchored at the
    # restart fires at other times.
    fresh = due_between(trigger, restart_at, end, "loop/every", anchor=restart_at)
    assert set(fresh).isdisjoint(after)


def test_jitter_is_within_bounds_and_deterministic_per_slot() -> None:
    trigger = Every(interval_seconds=60.0, jitter_seconds=20.0)
    anchor = 0.0
    end = 60.0 * 500 + 20.0  # the 500th slot plus its largest jitter
    fires = due_between(trigger, anchor, end, "a", anchor=anchor)
    assert len(fires) == 500
    offsets = [when - 60.0 * k for k, when in enumerate(fires, start=1)]
    assert all(0.0 <= offset < 20.0 for offset in offsets)
    assert len(set(offsets)) == 500  # a real spread, not a constant
    assert max(offsets) > 15.0 and min(offsets) < 5.0
    assert fires == due_between(trigger, anchor, end, "a", anchor=anchor)
    assert [every_fire_time(trigger, anchor, k, "a") for k in range(1, 501)] == fires
    other = [every_fire_time(trigger, anchor, k, "b") for k in range(1, 501)]
    assert sum(a != b for a, b in zip(fires, other, strict=True)) > 490  # its own jitter


def test_a_jittered_slot_not_yet_fired_is_still_next() -> None:
    trigger = Every(interval_seconds=100.0, jitter_seconds=50.0)
    first = every_fire_time(trigger, 0.0, 1, "s")
    assert 100.0 < first < 150.0  # this seed's first jitter is not zero
    # Asked between the slot (100) and its jittered time: that same firing, not the next.
    assert next_fire(trigger, 100.0, "s", anchor=0.0) == first
    assert next_fire(trigger, first, "s", anchor=0.0) == every_fire_time(trigger, 0.0, 2, "s")


def test_every_needs_its_anchor() -> None:
    with pytest.raises(ValueError, match="anchor"):
        next_fire(Every(interval_seconds=60.0), 0.0)


# due_between


def test_due_between_counts_a_window_and_excludes_its_start() -> None:
    minute = Cron("* * * * *")
    start = utc(2026, 5, 1, 12)
    due = due_between(minute, start, start + 3600)
    assert len(due) == 60
    assert due[0] == start + 60 and due[-1] == start + 3600  # (start, end]
    assert due_between(minute, start, start + 59) == []
    every = Every(interval_seconds=300.0)
    assert len(due_between(every, start, start + 3600, anchor=start)) == 12


def test_due_between_stops_at_its_limit_for_a_long_outage() -> None:
    minute = Cron("* * * * *")
    start = utc(2020, 1, 1)
    end = utc(2026, 1, 1)  # three million minutes
    began = time.perf_counter()
    due = due_between(minute, start, end, limit=25)
    assert time.perf_counter() - began < 1.0
    assert due == [start + 60 * k for k in range(1, 26)]
    assert len(due_between(minute, start, end)) == 1000  # the default cap
    assert due_between(minute, start, end, limit=0) == []
    every = Every(interval_seconds=1.0)
    assert len(due_between(every, start, end, anchor=start, limit=7)) == 7
    with pytest.raises(ValueError, match="limit"):
        due_between(minute, start, end, limit=-1)


# Clocks


async def test_fake_clock_wakes_sleepers_in_order_and_only_when_due() -> None:
    clock = FakeClock(start=1000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, when: float) -> None:
        await clock.sleep_until(when)
        woke.append((name, clock.now()))

    tasks = [
        asyncio.create_task(sleeper(name, when))
        for name, when in (("c", 1030.0), ("a", 1010.0), ("b", 1020.0), ("b2", 1020.0))
    ]
    await wait_until(lambda: len(clock.sleeping_until()) == 4)
    assert clock.sleeping_until() == [1010.0, 1020.0, 1020.0, 1030.0]

    clock.advance(9.5)  # not yet due: every sleeper still waits (a wake is set at once)
    assert clock.sleeping_until() == [1010.0, 1020.0, 1020.0, 1030.0]
    assert woke == []

    clock.advance(0.5)
    await wait_until(lambda: len(woke) == 1)
    assert woke == [("a", 1010.0)]

    clock.set(1025.0)  # wakes both sleepers of 1020, first come first woken
    await wait_until(lambda: len(woke) == 3)
    assert woke[1:] == [("b", 1025.0), ("b2", 1025.0)]
    assert clock.sleeping_until() == [1030.0]

    clock.advance(100.0)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert [name for name, _ in woke] == ["a", "b", "b2", "c"]


async def test_fake_clock_one_jump_wakes_all_due_in_wake_order() -> None:
    clock = FakeClock()
    order: list[float] = []

    async def sleeper(when: float) -> None:
        await clock.sleep_until(when)
        order.append(when)

    tasks = [asyncio.create_task(sleeper(when)) for when in (5.0, 3.0, 9.0, 1.0, 7.0)]
    await wait_until(lambda: len(clock.sleeping_until()) == 5)
    clock.set(8.0)
    await wait_until(lambda: len(order) == 4)
    assert order == [1.0, 3.0, 5.0, 7.0]
    assert clock.sleeping_until() == [9.0]
    tasks[2].cancel()  # the sleeper of 9.0
    await asyncio.gather(*tasks, return_exceptions=True)
    assert clock.sleeping_until() == []
    clock.advance(10.0)  # a cancelled sleeper is skipped, not woken twice


async def test_fake_clock_past_time_returns_at_once_and_never_goes_back() -> None:
    clock = FakeClock(start=50.0)
    await asyncio.wait_for(clock.sleep_until(50.0), timeout=1)
    await asyncio.wait_for(clock.sleep_until(10.0), timeout=1)
    assert clock.sleeping_until() == []
    with pytest.raises(ValueError, match="back"):
        clock.set(49.0)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1.0)
    assert clock.now() == 50.0


async def test_system_clock_reads_the_wall_clock_and_returns_at_once_for_a_past_time() -> None:
    clock: Clock = SystemClock()
    assert abs(clock.now() - time.time()) < 5.0
    began = time.monotonic()
    # An hour ago, and a day ago: no wait at all (a sleep of the absolute difference
    # would time out here).
    await asyncio.wait_for(clock.sleep_until(clock.now() - 3600), timeout=1)
    await asyncio.wait_for(clock.sleep_until(clock.now() - timedelta(days=1).total_seconds()), 1)
    assert time.monotonic() - began < 1.0


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), FakeClock(start=5.0)]
    assert clocks[1].now() == 5.0


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition` between loop turns until it holds; fail the test at a deadline."""
    async with asyncio.timeout(5):
        # Nothing signals "a task went to sleep on the clock", so poll between loop turns.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0)
