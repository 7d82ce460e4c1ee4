"""The scheduler's sense of time: the wall clock in the service, a fake one in tests.

The scheduler asks a `Clock` what time it is and waits on it until the next trigger is
due, never on `time` or `asyncio.sleep` directly, so a test can run a simulated day in
milliseconds by moving a `FakeClock` forward.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

# A long sleep re-reads the wall clock at least this often. asyncio's timers run on the
# monotonic clock, which on Linux stops while the machine is suspended and ignores a
# wall-clock correction (NTP), so one long asyncio.sleep could wake hours late.
MAX_SLEEP_SLICE = 60.0


class Clock(Protocol):
    """Wall-clock time in epoch seconds, and a wait until a given time."""

    def now(self) -> float:
        """The current time, in seconds since the epoch."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once `now()` has reached `when`; at once if it already has."""
        ...


class SystemClock:
    """The real clock: `time.time()` and asyncio's timers."""

    def now(self) -> float:
        """The current time, in seconds since the epoch."""
        return time.time()

    async def sleep_until(self, when: float) -> None:
        """Sleep until the wall clock reads `when`; return at once for a past time."""
        # Slices, not an Event: nothing signals that the wall clock moved (MAX_SLEEP_SLICE).
        while (remaining := when - time.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(remaining, MAX_SLEEP_SLICE))


class FakeClock:
    """A clock that only moves when a test moves it, with `advance` or `set`.

    Each sleeper waits on a future filed under its wake time; moving the clock wakes, in
    order of wake time, every sleeper whose time has come and no other. Time never goes
    back: the schedule a test checks could not have happened otherwise.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        # (wake time, arrival order, future): the order keeps equal wake times first come,
        # first woken, and spares heapq from comparing futures.
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    def now(self) -> float:
        """The current fake time, in seconds since the epoch."""
        return self._now

    async def sleep_until(self, when: float) -> None:
        """Wait until the clock is moved to `when` or later; return at once if it is."""
        if when <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._arrivals), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` forward and wake the sleepers now due."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds:g}s)")
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        """Move the clock to `when` (not before now) and wake the sleepers now due."""
        if when < self._now:
            raise ValueError(f"a clock does not go back (from {self._now:g} to {when:g})")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():  # a sleeper whose task was cancelled is already done
                future.set_result(None)

    def sleeping_until(self) -> list[float]:
        """The wake times of the sleepers still waiting, earliest first: a test can wait
        until the code under test is asleep before it moves the clock."""
        return sorted(when for when, _, future in self._sleepers if not future.done())
