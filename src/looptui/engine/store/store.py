"""The memory store: SQLite in WAL mode through aiosqlite, the source of truth for everything.

Events arrive through `emit()` (never blocking the caller) and are written in batches by the
writer (see `writer`), on a connection of its own. Runs, iterations, checks, verdicts and notes
are rare and are written directly, each statement its own transaction (their queries are in
`records`; those of the triggers' firings and schedule in `ledger`; the search in `search`).
Every SQLite error reaches the caller as a one-line StoreError naming the file.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from looptui.engine.secrets import Redactor
from looptui.engine.store.database import (
    StoreError,
    connect,
    create_private_file,
    database_errors,
    immediate_transaction,
    migrate,
)
from looptui.engine.store.ledger import Ledger
from looptui.engine.store.memory import MemoryRecords
from looptui.engine.store.records import Records
from looptui.engine.store.reviews import ReviewRecords
from looptui.engine.store.rows import event_from_row
from looptui.engine.store.search import Searching
from looptui.engine.store.writer import (
    EventWriter,
    Subscription,
    encode_fields,
    locked,
)
from looptui.protocol.events import (
    AnyPayload,
    Event,
    EventKind,
    ToolCalled,
    payload_fields,
    payload_from_fields,
)

logger = logging.getLogger(__name__)

_EVENT_COLUMNS = "id, run_id, iteration, ts, kind, data"
OPEN_ATTEMPTS = 4
LOCKED_ATTEMPTS = 3  # of a record write that met another connection's lock (busy timeout each)
__all__ = ["Store", "Subscription"]


class Store(Records, Ledger, MemoryRecords, Searching, ReviewRecords):
    """One open store. Use `await Store.open(path)` and `await store.close()`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: Path,
        redactor: Redactor,
        *,
        writer_db: aiosqlite.Connection,
    ) -> None:
        """`writer_db` is the events writer's own connection, apart from `db`, so that its
        transactions and those of the direct writes never mix (`open` makes both)."""
        self._db = db
        self._writer_db = writer_db
        self.path = path
        self.redactor = redactor
        # One write transaction at a time in this process, taken in turn (FIFO) by the events
        # writer and the record writes: SQLite's busy wait is not fair, and a writer that
        # commits batch after batch would starve the other connection into "database is locked".
        self._write_lock = asyncio.Lock()
        self._writer = EventWriter(writer_db, path, self._write_lock)

    @classmethod
    async def open(cls, path: Path, redactor: Redactor | None = None) -> Store:
        """Open (creating, private to the user, and migrating as needed) the store at `path`.

        Several processes opening a new store at once can meet a lock that SQLite reports at
        once instead of waiting for it; opening is tried again a few times before that is an
        error."""
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            try:
                return await cls._open(path, redactor)
            except StoreError as exc:
                locked = isinstance(exc.__cause__, sqlite3.OperationalError) and (
                    "locked" in str(exc.__cause__)
                )
                if not locked or attempt == OPEN_ATTEMPTS:
                    raise
                await asyncio.sleep(0.1 * attempt)
        raise AssertionError("unreachable")

    @classmethod
    async def _open(cls, path: Path, redactor: Redactor | None) -> Store:
        with database_errors(path, "open the looptui store"):
            create_private_file(path)
            db = await connect(path)
            try:
                await migrate(db, path)
                writer_db = await connect(path)
            except BaseException:  # Ctrl-C too: no connection thread may outlive the loop
                await db.close()
                raise
        return cls(db, path, redactor or Redactor(), writer_db=writer_db)

    async def close(self) -> None:
        """Write every pending event, stop the writer and close the database."""
        await self._writer.close()
        with database_errors(self.path, "close the looptui store"):
            await self._db.close()
            await self._writer_db.close()

    @property
    def events_written(self) -> int:
        return self._writer.events_written

    @property
    def batches_written(self) -> int:
        return self._writer.batches_written

    @property
    def events_dropped(self) -> int:
        """Output lines dropped because they came faster than they could be written."""
        return self._writer.events_dropped

    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        # The statement runs and is read to its end in one call on the connection's thread.
        # Run and fetched in two calls, the read would hold its snapshot open between them,
        # and a record write's BEGIN IMMEDIATE queued on this connection in between would fail
        # "database is locked" at once, without the busy timeout (SQLite does not wait for a
        # connection that already reads): if anything committed since the read began
        # (the events writer, batch after batch), or another process holds the write lock.
        with database_errors(self.path, "read the looptui store"):
            return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, int]:
        """One statement in its own write transaction; its (lastrowid, rowcount), read inside
        the transaction, so that another connection's insert is never taken for this one's.

        BEGIN IMMEDIATE takes the write lock before the statement reads anything: a plain
        autocommit write would read first, wait for the events writer's transaction, and then
        fail at once ("database is locked") because what it read is no longer the latest.
        """
        (counted,) = await self._write_many([(sql, params)])
        return counted

    async def _write_many(
        self, statements: Sequence[tuple[str, Iterable[Any]]]
    ) -> list[tuple[int, int]]:
        """Several statements in one write transaction (all land or none); each one's
        (lastrowid, rowcount)."""
        for attempt in range(1, LOCKED_ATTEMPTS + 1):
            try:
                with database_errors(self.path, "write to the looptui store"):
                    async with self._write_lock, immediate_transaction(self._db):
                        counted = []
                        for sql, params in statements:
                            cursor = await self._db.execute(sql, tuple(params))
                            counted.append((cursor.lastrowid or 0, cursor.rowcount))
                            await cursor.close()
                return counted
            except StoreError as exc:
                cause = exc.__cause__
                if attempt == LOCKED_ATTEMPTS or not (
                    isinstance(cause, sqlite3.Error) and locked(cause)
                ):
                    raise
                # a record write (a run's status) must not be lost to a lock held a while
                logger.warning("%s; trying again (%d of %d)", exc, attempt + 1, LOCKED_ATTEMPTS)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- events ------------------------------------------------------------------------------

    def emit(self, run_id: str, payload: AnyPayload, iteration: int = 0) -> None:
        """Queue an event for writing; returns at once.

        The payload is redacted and serialised here, so that a value JSON cannot hold fails
        the caller (TypeError) rather than the writer; values without a JSON type (in a tool
        call's input) become text. Subscribers get the payload as a reader of the store would.
        Raises StoreError once the store has failed to write.
        """
        fields = payload_fields(payload)
        redacted = self.redactor.value(fields)
        text = encode_fields(redacted)
        # a secret was hidden, or a tool's input held values JSON has no type for: publish
        # what was stored
        if redacted != fields or isinstance(payload, ToolCalled):
            payload = payload_from_fields(payload.kind, redacted)
        self._writer.add(Event(run_id, payload, iteration, time.time()), text)

    @property
    def crowded(self) -> bool:
        """Whether events wait to be written faster than they are: a producer that can wait
        (a run reading its agent's output) should `await room()` before it emits more."""
        return self._writer.crowded

    async def room(self) -> None:
        """Return once the writer has caught up enough (see `EventWriter.room`)."""
        await self._writer.room()

    async def flush(self) -> None:
        """Return once every event emitted before this call is written and published.

        Raises StoreError when they could not be written."""
        await self._writer.flush()

    def subscribe(self, run_id: str | None = None) -> Subscription:
        return self._writer.subscribe(run_id)

    async def events(
        self,
        run_id: str,
        after_id: int = 0,
        limit: int | None = None,
        kinds: Iterable[EventKind] | None = None,
    ) -> list[Event]:
        """A run's stored events in order; `limit` keeps the last ones."""
        query = f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = ? AND id > ?"
        params: list[Any] = [run_id, after_id]
        if kinds is not None:
            wanted = [kind.value for kind in kinds]
            query += f" AND kind IN ({', '.join('?' for _ in wanted)})"
            params += wanted
        if limit is not None:
            query = f"SELECT * FROM ({query} ORDER BY id DESC LIMIT ?) ORDER BY id"
            params.append(limit)
        else:
            query += " ORDER BY id"
        return [event_from_row(row) for row in await self._fetchall(query, params)]

    async def events_since(
        self, after_id: int, run_id: str | None = None, limit: int = 10_000
    ) -> list[Event]:
        """Up to `limit` events after `after_id`, of one run or of all, in order: the history
        a subscription with a cursor is given before live events."""
        query = f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > ?"
        params: list[Any] = [after_id]
        if run_id is not None:
            query += " AND run_id = ?"
            params.append(run_id)
        rows = await self._fetchall(query + " ORDER BY id LIMIT ?", [*params, limit])
        return [event_from_row(row) for row in rows]

    async def last_event_id(self) -> int:
        """The id of the newest stored event (0 when there is none)."""
        rows = await self._fetchall("SELECT coalesce(max(id), 0) FROM events")
        return int(rows[0][0])

    async def events_page(self, run_id: str, after_id: int, count: int) -> list[Event]:
        """The first `count` of a run's events after `after_id`: a page of its log, read in
        order by giving the last id of one page as the next page's `after_id`."""
        rows = await self._fetchall(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            (run_id, after_id, count),
        )
        return [event_from_row(row) for row in rows]

    async def latest_lines(self, kinds: Iterable[EventKind]) -> dict[str, Event]:
        """Each run's newest event among `kinds` (the grid's "last line"), in one query.
        An agent's end of turn counts only when it succeeded with a final message: one that
        said nothing leaves the line before it."""
        wanted = [kind.value for kind in kinds]
        marks = ", ".join("?" for _ in wanted)
        rows = await self._fetchall(
            "SELECT e.id, e.run_id, e.iteration, e.ts, e.kind, e.data FROM runs r "
            f"JOIN events e ON e.id = (SELECT id FROM events WHERE run_id = r.id "
            f"AND kind IN ({marks}) AND (kind != ? OR CASE WHEN json_valid(data) THEN "
            "json_extract(data, '$.ok') AND coalesce(json_extract(data, '$.message'), '') "
            "!= '' ELSE 0 END) ORDER BY id DESC LIMIT 1)",
            [*wanted, EventKind.AGENT_FINISHED.value],
        )
        return {row["run_id"]: event_from_row(row) for row in rows}
