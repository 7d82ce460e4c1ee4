"""A subscription with a cursor: the stored history after the last event a client saw, then
the live events, with no gap and no duplicate.

The live subscription is opened first, so that nothing written while the history is read
falls in between; live events the history already gave are dropped by their row id. A
reader that falls too far behind (MAX_BACKLOG) is given no more live events; once it has
taken those it had, it reads what it missed from the store, then goes live again.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import Protocol

from looptui.engine.store.writer import Subscription
from looptui.protocol.events import Event, Lines, OutputPrinted

HISTORY_PAGE = 5000  # events per batch while the history is read


class Feed(Protocol):
    """Batches of events, in order, until the feed is closed (then `next_batch` is None)."""

    async def next_batch(self) -> list[Event] | None: ...

    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    @property
    def backlog(self) -> int:
        """Events received but not taken yet (a reader far behind may skip some output)."""
        ...

    def close(self) -> None: ...


class Batches(abc.ABC):
    """`async for batch in feed`, for a feed that has `next_batch`."""

    @abc.abstractmethod
    async def next_batch(self) -> list[Event] | None: ...

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[Event]]:
        while (batch := await self.next_batch()) is not None:
            yield batch


class _EventSource(Protocol):
    async def events_since(
        self, after_id: int, run_id: str | None = None, limit: int = 10_000
    ) -> list[Event]: ...

    def subscribe(self, run_id: str | None = None) -> Subscription: ...


class CursorFeed(Batches):
    """A `Feed` over the store: history after `after` (None: none, live events only)."""

    def __init__(
        self, source: _EventSource, run_id: str | None, after: int | None, lines: Lines = "all"
    ) -> None:
        self._source = source
        self._live = source.subscribe(run_id)
        self._cursor = after
        self._catching_up = after is not None
        self._newest = lines == "newest"

    async def next_batch(self) -> list[Event] | None:
        batch = await self._next_batch()
        return newest_lines(batch) if batch and self._newest else batch

    async def _next_batch(self) -> list[Event] | None:
        while self._catching_up:
            assert self._cursor is not None
            page = await self._source.events_since(self._cursor, self._live.run_id, HISTORY_PAGE)
            if len(page) < HISTORY_PAGE:
                self._catching_up = False
            if page:
                self._cursor = page[-1].id or self._cursor
                return page
        while True:
            live = self._live
            if live.overflowed and live.queue.empty() and self._cursor is not None:
                # it fell behind and was given no more: what it missed is in the store
                live.close()
                self._live = self._source.subscribe(live.run_id)
                self._catching_up = True
                return await self._next_batch()
            batch = await live.next_batch()
            if batch is None:
                return None
            if self._cursor is not None:
                batch = [event for event in batch if (event.id or 0) > self._cursor]
            if batch:
                self._cursor = batch[-1].id or self._cursor
                return batch

    @property
    def backlog(self) -> int:
        return self._live.backlog

    def close(self) -> None:
        self._live.close()


def newest_lines(batch: list[Event]) -> list[Event]:
    """The batch without the output lines that a later line of the same run in it follows:
    what a view of the newest line of each run needs (the grid), at a fraction of the
    events under a flood of output. The batch's last event is always kept, so a cursor
    taken from it still covers the whole batch."""
    seen: set[str] = set()
    kept: list[Event] = []
    for event in reversed(batch):
        if isinstance(event.payload, OutputPrinted):
            if event.run_id in seen:
                continue
            seen.add(event.run_id)
        kept.append(event)
    kept.reverse()
    return kept
