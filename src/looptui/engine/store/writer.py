"""The event writer: events are serialised when emitted, written in batches by one task on a
connection of its own, then published to subscribers with their row ids.

Batches go by size, by time and on shutdown, one transaction each. The queue is bounded:
a producer that can wait (a run reading its agent's output) is asked to past HIGH_WATER
(`crowded`, `room`); output lines that still arrive faster than they can be written are
counted and dropped past MAX_PENDING, and a note says how many. A batch kept out by another
process's lock for longer than SQLite's busy timeout is given up and counted, and the writer
goes on: the next batch written starts with an error event per run saying how many of its
events could not be stored. A batch that cannot be written for any other reason (a full disk,
a damaged file) fails the store: pending and later flushes raise StoreError rather than wait
forever, and later emits raise it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from looptui.engine.agents.base import NOTE_STREAM
from looptui.engine.store.database import StoreError, immediate_transaction
from looptui.protocol.events import (
    ErrorReported,
    Event,
    EventKind,
    OutputPrinted,
    payload_fields,
)
from looptui.words import counted

logger = logging.getLogger(__name__)

# A batch is what is queued when the writer gets to it: a lone event is written at once, and
# events that arrive during a write make the next batch (one transaction, one statement).
BATCH_SIZE = 2000
MAX_PENDING = 20_000  # events waiting to be written; past it output lines are dropped
# Past this many waiting, producers that can wait (a run's agent output) are asked to, until
# the queue is down to half of it: the agent then waits on its full pipe, and on a machine
# short of CPU the writer gets the time it needs instead of lines being dropped.
HIGH_WATER = MAX_PENDING // 2
MAX_BACKLOG = 20_000  # events a subscription may have waiting before it is given no more
WRITE_ATTEMPTS = 3  # of a batch, a moment apart, before the store is given up as failed


@dataclass(frozen=True)
class _Pending:
    event: Event
    text: str  # the event's payload as JSON


@dataclass
class _Dropped:
    """Where in the queue output lines of a run's turn started to be dropped, and how many."""

    run_id: str
    iteration: int
    ts: float
    count: int = 0


@dataclass
class _Flush:
    done: asyncio.Future[None]


_STOP = object()


def encode_data(data: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """`data` as JSON, and the data subscribers get (as a reader of the store would).

    Values JSON has no type for are stored as their `str()`. Raises TypeError, naming the
    problem, for data that cannot be stored at all (keys that are not strings, cycles).
    """
    converted = False

    def as_text(value: object) -> str:
        nonlocal converted
        converted = True
        return str(value)

    try:
        text = json.dumps(data, ensure_ascii=False, default=as_text)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates (undecodable bytes) are escaped
                text = json.dumps(data, default=as_text)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"event data cannot be stored as JSON: {exc}") from None
    return text, (json.loads(text) if converted else data)


_FIELDS_ENCODER = msgspec.json.Encoder()


def encode_fields(fields: Mapping[str, Any]) -> str:
    """A payload's plain data (`payload_fields`: only JSON's own types) as JSON text; the
    fast path of `encode_data`, taken for every event."""
    try:
        return _FIELDS_ENCODER.encode(fields).decode()
    except UnicodeEncodeError:  # lone surrogates (undecodable bytes) are escaped
        return json.dumps(fields)
    except (TypeError, ValueError) as exc:  # keys that are not text
        raise TypeError(f"event data cannot be stored as JSON: {exc}") from None


class Subscription:
    """An async iterator over events published after it was opened."""

    def __init__(self, writer: EventWriter, run_id: str | None) -> None:
        self._writer = writer
        self.run_id = run_id
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.overflowed = False  # it fell MAX_BACKLOG behind and was given no more

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while (event := await self.queue.get()) is not None:
            yield event

    async def next_batch(self, limit: int = 10_000) -> list[Event] | None:
        """Wait for an event, then take every one already waiting (up to `limit`); None once
        the subscription is closed and drained."""
        event = await self.queue.get()
        if event is None:
            return None
        batch = [event]
        while len(batch) < limit and not self.queue.empty():
            event = self.queue.get_nowait()
            if event is None:
                self.queue.put_nowait(None)  # the next call ends the iteration
                break
            batch.append(event)
        return batch

    @property
    def backlog(self) -> int:
        """Events published but not taken yet."""
        return self.queue.qsize()

    def publish(self, events: list[Event]) -> None:
        """Queue the events this subscription wants, up to MAX_BACKLOG waiting: past it the
        subscription is `overflowed` and takes no more (a reader with a cursor reads the rest
        from the store), so that a reader that stopped reading costs no memory."""
        if self.overflowed:
            return
        for event in events:
            if self.run_id in (None, event.run_id):
                if self.queue.qsize() >= MAX_BACKLOG:
                    self.overflowed = True
                    return
                self.queue.put_nowait(event)

    def close(self) -> None:
        self._writer.subscriptions.discard(self)
        self.queue.put_nowait(None)


class EventWriter:
    """Owns the event queue, the writer task and its connection, and the subscriptions."""

    def __init__(
        self, db: aiosqlite.Connection, path: Path, turn: asyncio.Lock | None = None
    ) -> None:
        """`turn` is shared with the store's other writes in this process: taking turns in
        order keeps a busy writer from starving them (SQLite's own busy wait is not fair)."""
        self._db = db
        self.path = path
        self._turn = turn or asyncio.Lock()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._pending = 0  # events in the queue
        self._room = asyncio.Event()  # set while producers need not wait (see HIGH_WATER)
        self._room.set()
        self._dropping: dict[tuple[str, int], _Dropped] = {}  # markers still in the queue
        self.subscriptions: set[Subscription] = set()
        self.failure: StoreError | None = None
        self.events_written = 0
        self.batches_written = 0
        self.events_dropped = 0
        self.events_lost = 0  # given up while the store was locked by another process
        self._lost: dict[str, tuple[int, int]] = {}  # run id: (events, last iteration), untold
        self._task = asyncio.create_task(self._run(), name="looptui-store-writer")

    def add(self, event: Event, text: str) -> None:
        """Queue an event whose data is already serialised as `text`."""
        if self.failure is not None:
            raise StoreError(str(self.failure))
        if event.kind is EventKind.OUTPUT and self._pending >= MAX_PENDING:
            key = (event.run_id, event.iteration)
            marker = self._dropping.get(key)
            if marker is None:  # the note takes the place of the first line dropped
                marker = self._dropping[key] = _Dropped(event.run_id, event.iteration, event.ts)
                self._queue.put_nowait(marker)
            marker.count += 1
            self.events_dropped += 1
            return
        self._pending += 1
        self._queue.put_nowait(_Pending(event, text))

    @property
    def crowded(self) -> bool:
        """Whether HIGH_WATER events or more wait to be written (see `room`)."""
        return self._pending >= HIGH_WATER

    async def room(self) -> None:
        """Return once fewer than HIGH_WATER / 2 events wait to be written, or the store has
        failed (the next emit says so): a producer that waits here is never dropped."""
        while self.crowded and self.failure is None:
            self._room.clear()
            await self._room.wait()

    async def flush(self) -> None:
        """Return once every event added before is written, or counted as lost while the store
        was locked (see the module's doc); StoreError if it never will be written."""
        if self.failure is not None:
            raise StoreError(str(self.failure))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Flush(done))
        await done

    def subscribe(self, run_id: str | None) -> Subscription:
        subscription = Subscription(self, run_id)
        self.subscriptions.add(subscription)
        return subscription

    async def close(self) -> None:
        """Write what is queued, stop the task and end every subscription."""
        self._queue.put_nowait(_STOP)
        await self._task
        for subscription in list(self.subscriptions):
            subscription.close()

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, flushes, stopping = await self._next_batch()
            try:
                if batch:
                    await self._write(batch)
            except Exception as exc:  # a bug here must not leave flushes waiting forever
                logger.exception("the store's writer failed")
                self._fail(exc, len(batch))
            if self._pending < HIGH_WATER // 2 or self.failure is not None:
                self._room.set()
            for flush in flushes:
                if flush.done.done():
                    continue
                if self.failure is not None:
                    flush.done.set_exception(StoreError(str(self.failure)))
                else:
                    flush.done.set_result(None)

    async def _next_batch(self) -> tuple[list[_Pending], list[_Flush], bool]:
        batch: list[_Pending] = []
        flushes: list[_Flush] = []
        stopping = False
        item = await self._queue.get()
        while True:
            if item is _STOP:
                stopping = True
            elif isinstance(item, _Flush):
                flushes.append(item)
            elif isinstance(item, _Pending):
                self._pending -= 1
                batch.append(item)
            elif isinstance(item, _Dropped):
                batch.append(self._dropped_note(item))
            # after a stop, everything queued before it goes into this last batch
            if not stopping and (flushes or len(batch) >= BATCH_SIZE):
                break
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
        return batch, flushes, stopping

    def _dropped_note(self, marker: _Dropped) -> _Pending:
        """The note a drop marker becomes; lines dropped after this get a marker of their own."""
        key = (marker.run_id, marker.iteration)
        if self._dropping.get(key) is marker:
            del self._dropping[key]
        payload = OutputPrinted(
            f"[looptui: {counted(marker.count, 'line')} of output dropped: they came faster than "
            "they could be stored]",
            NOTE_STREAM,
        )
        event = Event(marker.run_id, payload, marker.iteration, marker.ts)
        return _Pending(event, json.dumps(payload_fields(payload)))

    async def _write(self, batch: list[_Pending]) -> None:
        if self.failure is not None:  # nothing can be written any more; say so once
            return
        told = self._lost_notes()
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                written = await self._insert(told + batch)
                break
            except sqlite3.Error as exc:
                if locked(exc):  # SQLite already waited its busy timeout: give this batch up
                    self._count_lost(batch)
                    return
                if attempt == WRITE_ATTEMPTS:
                    self._fail(exc, len(batch))
                    return
                await asyncio.sleep(0.2 * attempt)
        self._lost.clear()
        for subscription in list(self.subscriptions):
            subscription.publish(written)

    def _count_lost(self, batch: list[_Pending]) -> None:
        self.events_lost += len(batch)
        for item in batch:
            count, _ = self._lost.get(item.event.run_id, (0, 0))
            self._lost[item.event.run_id] = (count + 1, item.event.iteration)
        logger.warning("%s: locked by another process; %d events not stored", self.path, len(batch))

    def _lost_notes(self) -> list[_Pending]:
        """An error event per run whose events were given up, to be written first."""
        notes = []
        for run_id, (count, iteration) in self._lost.items():
            payload = ErrorReported(
                f"{counted(count, 'event')} could not be stored: the store was locked by "
                "another process"
            )
            event = Event(run_id, payload, iteration, time.time())
            notes.append(_Pending(event, json.dumps(payload_fields(payload))))
        return notes

    def _fail(self, exc: BaseException, lost: int) -> None:
        if self.failure is not None:
            return
        reason = " ".join(str(exc).split()) or type(exc).__name__
        self.failure = StoreError(
            f"{self.path}: cannot write events ({reason}); {counted(lost, 'event')} "
            f"{'was' if lost == 1 else 'were'} lost and "
            "no more will be stored"
        )
        logger.error("%s", self.failure)

    async def _insert(self, batch: list[_Pending]) -> list[Event]:
        async with self._turn, immediate_transaction(self._db):
            # Ids are chosen inside the write transaction so that subscribers get them without a
            # round trip per row; BEGIN IMMEDIATE keeps other processes from taking the same ids.
            async with self._db.execute("SELECT coalesce(max(id), 0) FROM events") as cursor:
                row = await cursor.fetchone()
            first_id = int(row[0]) + 1 if row else 1
            # One statement for the whole batch: executemany hands the GIL to and from the
            # event loop's thread on every row, which crawls when the loop is busy (a TUI
            # drawing while runs stream).
            rows = json.dumps(
                [
                    [
                        first_id + index,
                        item.event.run_id,
                        item.event.iteration,
                        item.event.ts,
                        item.event.kind.value,
                        item.text,
                    ]
                    for index, item in enumerate(batch)
                ]
            )
            await self._db.execute(
                "INSERT INTO events (id, run_id, iteration, ts, kind, data) "
                "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, "
                "value ->> 5 FROM json_each(?)",
                (rows,),
            )
        self.events_written += len(batch)
        self.batches_written += 1
        return [
            msgspec.structs.replace(item.event, id=first_id + index)
            for index, item in enumerate(batch)
        ]


def locked(exc: sqlite3.Error) -> bool:
    """Whether `exc` is another connection's lock outlasting the busy timeout."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )
