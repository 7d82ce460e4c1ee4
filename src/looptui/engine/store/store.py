"""The memory store: SQLite in WAL mode through aiosqlite, the source of truth for everything.

Events arrive through `emit()` (never blocking the caller) and are written by one writer task
in batches — by size, by time and on shutdown — inside one transaction each, then fanned out
to subscribers with their row ids. Runs, iterations, checks, verdicts and notes are rare and
are written directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite

from looptui.engine.errors import RunNotFound
from looptui.engine.events import Event, EventKind
from looptui.engine.models import (
    CheckResult,
    DiffStat,
    Iteration,
    Note,
    NoteKind,
    Run,
    RunStatus,
    Verdict,
)
from looptui.engine.secrets import Redactor
from looptui.engine.store.schema import MIGRATIONS

BATCH_SIZE = 500
FLUSH_INTERVAL = 0.05  # seconds an event may wait for companions before it is written
_RUN_COLUMNS = (
    "id, loop, agent, status, prompt, base_branch, base_commit, branch, worktree, "
    "max_iterations, iterations, head_commit, error, created_at, started_at, finished_at, "
    "owner_pid, diff_files, diff_added, diff_removed, input_tokens, output_tokens, cost_usd"
)
_RUN_FIELDS = frozenset(
    {
        "status",
        "iterations",
        "max_iterations",  # grows when feedback continues a run
        "head_commit",
        "error",
        "started_at",
        "finished_at",
        "owner_pid",
        "owner_host",
        "resume_token",
        "diff_files",
        "diff_added",
        "diff_removed",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }
)


@dataclass
class _Flush:
    done: asyncio.Future[None]


_STOP = object()


class Subscription:
    """An async iterator over events published after it was opened."""

    def __init__(self, store: Store, run_id: str | None) -> None:
        self._store = store
        self.run_id = run_id
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while (event := await self.queue.get()) is not None:
            yield event

    def close(self) -> None:
        self._store._subscriptions.discard(self)
        self.queue.put_nowait(None)


class Store:
    """One open store. Use `await Store.open(path)` and `await store.close()`."""

    def __init__(self, db: aiosqlite.Connection, path: Path, redactor: Redactor) -> None:
        self._db = db
        self.path = path
        self.redactor = redactor
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._subscriptions: set[Subscription] = set()
        self._writer = asyncio.create_task(self._write_events(), name="looptui-store-writer")
        self.events_written = 0
        self.batches_written = 0

    @classmethod
    async def open(cls, path: Path, redactor: Redactor | None = None) -> Store:
        """Open (creating, private to the user, and migrating as needed) the store at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        # A cancel (Ctrl-C) while opening waits for the connection and closes it, so that its
        # thread ends now rather than call back into a closed event loop (or never end).
        connecting = asyncio.ensure_future(aiosqlite.connect(path, isolation_level=None))
        db: aiosqlite.Connection | None = None
        try:
            db = await asyncio.shield(connecting)
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=10000")
            await db.execute("PRAGMA foreign_keys=ON")
            await _migrate(db)
        except BaseException:
            if db is None:
                with contextlib.suppress(Exception):
                    db = await connecting
            if db is not None:
                await db.close()
            raise
        return cls(db, path, redactor or Redactor())

    async def close(self) -> None:
        """Write every pending event, stop the writer and close the database."""
        self._queue.put_nowait(_STOP)
        await self._writer
        for subscription in list(self._subscriptions):
            subscription.close()
        await self._db.close()

    # -- events ------------------------------------------------------------------------------

    def emit(
        self,
        run_id: str,
        kind: EventKind,
        data: Mapping[str, Any] | None = None,
        iteration: int = 0,
    ) -> None:
        """Queue an event for writing; returns at once."""
        self._queue.put_nowait(Event(run_id, kind, data or {}, iteration, time.time()))

    async def flush(self) -> None:
        """Return once every event emitted before this call is written and published."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Flush(done))
        await done

    def subscribe(self, run_id: str | None = None) -> Subscription:
        subscription = Subscription(self, run_id)
        self._subscriptions.add(subscription)
        return subscription

    async def _write_events(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            batch: list[Event] = []
            flushes: list[_Flush] = []
            item = await self._queue.get()
            deadline = loop.time() + FLUSH_INTERVAL
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Flush):
                    flushes.append(item)
                else:
                    batch.append(item)
                if stopping or flushes or len(batch) >= BATCH_SIZE:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
            if stopping:  # drain what was queued before the stop
                while not self._queue.empty():
                    item = self._queue.get_nowait()
                    if isinstance(item, _Flush):
                        flushes.append(item)
                    elif item is not _STOP:
                        batch.append(item)
            if batch:
                written = await self._insert_events(batch)
                for subscription in list(self._subscriptions):
                    for event in written:
                        if subscription.run_id in (None, event.run_id):
                            subscription.queue.put_nowait(event)
            for flush in flushes:
                if not flush.done.done():
                    flush.done.set_result(None)

    async def _insert_events(self, batch: list[Event]) -> list[Event]:
        redact = self.redactor.value
        rows: list[tuple[Any, ...]] = []
        written: list[Event] = []
        for event in batch:
            data = redact(dict(event.data))
            rows.append((event.run_id, event.iteration, event.ts, event.kind.value, data))
            written.append(replace(event, data=data))
        for attempt in range(5):
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:  # another process holds the write lock too long
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        try:
            # Ids are chosen inside the write transaction so that subscribers get them without a
            # round trip per row; BEGIN IMMEDIATE keeps other processes from taking the same ids.
            async with self._db.execute("SELECT coalesce(max(id), 0) FROM events") as cursor:
                row = await cursor.fetchone()
            first_id = int(row[0]) + 1 if row else 1
            await self._db.executemany(
                "INSERT INTO events (id, run_id, iteration, ts, kind, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (first_id + index, *row[:4], json.dumps(row[4], ensure_ascii=False))
                    for index, row in enumerate(rows)
                ],
            )
            await self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await self._db.execute("ROLLBACK")
            raise
        self.events_written += len(batch)
        self.batches_written += 1
        return [replace(event, id=first_id + index) for index, event in enumerate(written)]

    async def events(
        self,
        run_id: str,
        after_id: int = 0,
        limit: int | None = None,
        kinds: Iterable[EventKind] | None = None,
    ) -> list[Event]:
        """A run's stored events in order; `limit` keeps the last ones."""
        query = (
            "SELECT id, run_id, iteration, ts, kind, data FROM events WHERE run_id = ? AND id > ?"
        )
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
        async with self._db.execute(query, params) as cursor:
            rows = await cursor.fetchall()
        return [
            Event(
                run_id=row["run_id"],
                kind=EventKind(row["kind"]),
                data=json.loads(row["data"]),
                iteration=row["iteration"],
                ts=row["ts"],
                id=row["id"],
            )
            for row in rows
        ]

    async def search(self, text: str, limit: int = 50) -> list[Event]:
        """Events whose text matches an FTS5 query, newest first."""
        async with self._db.execute(
            "SELECT e.id, e.run_id, e.iteration, e.ts, e.kind, e.data FROM events_fts f "
            "JOIN events e ON e.id = f.rowid WHERE events_fts MATCH ? ORDER BY e.id DESC LIMIT ?",
            (text, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            Event(
                row["run_id"],
                EventKind(row["kind"]),
                json.loads(row["data"]),
                row["iteration"],
                row["ts"],
                row["id"],
            )
            for row in rows
        ]

    # -- loops and runs ------------------------------------------------------------------------

    async def record_loop(self, name: str, definition: Mapping[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO loops (name, definition, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, "
            "updated_at = excluded.updated_at",
            (name, json.dumps(definition, default=str), time.time()),
        )

    async def insert_run(self, run: Run) -> None:
        await self._db.execute(
            "INSERT INTO runs (id, loop, agent, status, prompt, base_branch, base_commit, branch, "
            "worktree, max_iterations, created_at, owner_pid, owner_host) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.loop,
                run.agent,
                run.status.value,
                self.redactor.text(run.prompt),
                run.base_branch,
                run.base_commit,
                run.branch,
                run.worktree,
                run.max_iterations,
                run.created_at,
                os.getpid(),
                socket.gethostname(),
            ),
        )

    async def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise ValueError(f"not run fields: {sorted(unknown)}")
        if isinstance(fields.get("status"), RunStatus):
            fields["status"] = fields["status"].value
        if isinstance(fields.get("error"), str):
            fields["error"] = self.redactor.text(fields["error"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self._db.execute(
            f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id)
        )

    async def run(self, run_id: str) -> Run:
        async with self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
        ) as c:
            row = await c.fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r}")
        return _run_from_row(row)

    async def find_run(self, prefix: str) -> Run:
        """The one run whose id starts with `prefix`."""
        if not prefix or any(ch in prefix for ch in "%_"):
            raise RunNotFound(f"no run matches {prefix!r}")
        async with self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ORDER BY created_at LIMIT 3",
            (prefix + "%",),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            raise RunNotFound(f"no run matches {prefix!r}")
        if len(rows) > 1:
            ids = ", ".join(row["id"] for row in rows)
            raise RunNotFound(f"{prefix!r} matches several runs ({ids}); give more of the id")
        return _run_from_row(rows[0])

    async def runs(self, statuses: Iterable[RunStatus] | None = None) -> list[Run]:
        query = f"SELECT {_RUN_COLUMNS} FROM runs"
        params: list[str] = []
        if statuses is not None:
            params = [status.value for status in statuses]
            query += f" WHERE status IN ({', '.join('?' for _ in params)})"
        async with self._db.execute(query + " ORDER BY created_at", params) as cursor:
            return [_run_from_row(row) for row in await cursor.fetchall()]

    async def mark_interrupted(self) -> list[str]:
        """Mark active runs of this host whose owning process is gone as interrupted."""
        host = socket.gethostname()
        async with self._db.execute(
            "SELECT id, owner_pid FROM runs WHERE status IN (?, ?) AND owner_host = ?",
            (RunStatus.QUEUED.value, RunStatus.RUNNING.value, host),
        ) as cursor:
            rows = list(await cursor.fetchall())
        lost = [row["id"] for row in rows if not _process_alive(row["owner_pid"])]
        for run_id in lost:
            await self.update_run(
                run_id,
                status=RunStatus.INTERRUPTED,
                finished_at=time.time(),
                error="its looptui process ended before the run finished",
            )
        return lost

    # -- iterations, checks, verdicts, notes -------------------------------------------------

    async def start_iteration(self, run_id: str, number: int, prompt: str) -> None:
        await self._db.execute(
            "INSERT INTO iterations (run_id, number, started_at, prompt) VALUES (?, ?, ?, ?)",
            (run_id, number, time.time(), self.redactor.text(prompt)),
        )
        await self.update_run(run_id, iterations=number)

    async def finish_iteration(
        self,
        run_id: str,
        number: int,
        *,
        agent_ok: bool,
        agent_message: str,
        exit_code: int | None,
        commit: str | None,
        tree: str | None,
        diff: DiffStat,
        resume_token: str | None = None,
        usage: tuple[int, int, float] = (0, 0, 0.0),
    ) -> None:
        await self._db.execute(
            "UPDATE iterations SET finished_at = ?, agent_ok = ?, agent_message = ?, "
            "exit_code = ?, commit_sha = ?, tree = ?, "
            "diff_files = ?, diff_added = ?, diff_removed = ?, "
            "resume_token = ?, input_tokens = ?, output_tokens = ?, cost_usd = ? "
            "WHERE run_id = ? AND number = ?",
            (
                time.time(),
                int(agent_ok),
                self.redactor.text(agent_message),
                exit_code,
                commit,
                tree,
                diff.files,
                diff.added,
                diff.removed,
                resume_token,
                *usage,
                run_id,
                number,
            ),
        )

    async def iterations(self, run_id: str) -> list[Iteration]:
        async with self._db.execute(
            "SELECT * FROM iterations WHERE run_id = ? ORDER BY number", (run_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            Iteration(
                run_id=row["run_id"],
                number=row["number"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                agent_ok=None if row["agent_ok"] is None else bool(row["agent_ok"]),
                agent_message=row["agent_message"],
                commit=row["commit_sha"],
                tree=row["tree"],
                diff=DiffStat(row["diff_files"], row["diff_added"], row["diff_removed"]),
            )
            for row in rows
        ]

    async def add_check_result(self, run_id: str, iteration: int, result: CheckResult) -> None:
        await self._db.execute(
            "INSERT INTO check_results (run_id, iteration, name, command, exit_code, timed_out, "
            "duration, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                iteration,
                result.name,
                result.command,
                result.exit_code,
                int(result.timed_out),
                result.duration,
                self.redactor.text(result.output),
            ),
        )

    async def check_results(self, run_id: str) -> list[tuple[int, CheckResult]]:
        async with self._db.execute(
            "SELECT * FROM check_results WHERE run_id = ? ORDER BY iteration, id", (run_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            (
                row["iteration"],
                CheckResult(
                    name=row["name"],
                    command=row["command"],
                    exit_code=row["exit_code"],
                    duration=row["duration"],
                    output=row["output"],
                    timed_out=bool(row["timed_out"]),
                ),
            )
            for row in rows
        ]

    async def add_verdict(self, run_id: str, iteration: int, verdict: Verdict) -> None:
        redact = self.redactor.text
        await self._db.execute(
            "INSERT INTO verdicts (run_id, iteration, done, evaluator, confidence, reasons, "
            "next_steps, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                iteration,
                int(verdict.done),
                verdict.evaluator,
                verdict.confidence,
                json.dumps([redact(reason) for reason in verdict.reasons]),
                json.dumps([redact(step) for step in verdict.next_steps]),
                time.time(),
            ),
        )

    async def verdicts(self, run_id: str) -> list[tuple[int, Verdict]]:
        async with self._db.execute(
            "SELECT * FROM verdicts WHERE run_id = ? ORDER BY iteration, id", (run_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [(row["iteration"], _verdict_from_row(row)) for row in rows]

    async def latest_lines(self, kinds: Iterable[EventKind]) -> dict[str, Event]:
        """Each run's newest event among `kinds` (the grid's "last line"), in one query."""
        wanted = [kind.value for kind in kinds]
        marks = ", ".join("?" for _ in wanted)
        async with self._db.execute(
            "SELECT e.id, e.run_id, e.iteration, e.ts, e.kind, e.data FROM runs r "
            f"JOIN events e ON e.id = (SELECT id FROM events WHERE run_id = r.id "
            f"AND kind IN ({marks}) ORDER BY id DESC LIMIT 1)",
            wanted,
        ) as cursor:
            rows = await cursor.fetchall()
        return {
            row["run_id"]: Event(
                row["run_id"],
                EventKind(row["kind"]),
                json.loads(row["data"]),
                row["iteration"],
                row["ts"],
                row["id"],
            )
            for row in rows
        }

    async def latest_verdicts(self) -> dict[str, tuple[int, Verdict]]:
        """Each run's verdict of its newest judged iteration, in one query."""
        async with self._db.execute(
            "SELECT * FROM verdicts v WHERE id = "
            "(SELECT id FROM verdicts WHERE run_id = v.run_id ORDER BY iteration DESC, id DESC "
            "LIMIT 1)"
        ) as cursor:
            rows = await cursor.fetchall()
        return {row["run_id"]: (row["iteration"], _verdict_from_row(row)) for row in rows}

    async def add_note(self, note: Note) -> None:
        await self._db.execute(
            "INSERT INTO notes (run_id, iteration, kind, text, created_at) VALUES (?, ?, ?, ?, ?)",
            (
                note.run_id,
                note.iteration,
                note.kind.value,
                self.redactor.text(note.text),
                note.created_at or time.time(),
            ),
        )

    async def notes(self, run_id: str) -> list[Note]:
        async with self._db.execute(
            "SELECT * FROM notes WHERE run_id = ? ORDER BY id", (run_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            Note(
                row["run_id"],
                row["iteration"],
                NoteKind(row["kind"]),
                row["text"],
                row["created_at"],
            )
            for row in rows
        ]


async def _migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the store has schema version {version}, newer than this looptui knows; upgrade it"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits first; each migration and its version bump are one transaction.
        await db.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
        )


def _verdict_from_row(row: sqlite3.Row) -> Verdict:
    return Verdict(
        done=bool(row["done"]),
        evaluator=row["evaluator"],
        confidence=row["confidence"],
        reasons=tuple(json.loads(row["reasons"])),
        next_steps=tuple(json.loads(row["next_steps"])),
    )


def _run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        loop=row["loop"],
        agent=row["agent"],
        status=RunStatus(row["status"]),
        prompt=row["prompt"],
        base_branch=row["base_branch"],
        base_commit=row["base_commit"],
        branch=row["branch"],
        worktree=row["worktree"],
        max_iterations=row["max_iterations"],
        iterations=row["iterations"],
        head_commit=row["head_commit"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        owner_pid=row["owner_pid"],
        diff=DiffStat(row["diff_files"], row["diff_added"], row["diff_removed"]),
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=row["cost_usd"],
    )


def _process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
