"""Opening the store's SQLite file: privacy, pragmas, migrations, and one-line errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite

from looptui.engine.errors import LooptuiError
from looptui.engine.store.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's write to end


class StoreError(LooptuiError):
    """The store cannot be read or written (damaged, locked for too long, disk full...)."""


@contextlib.contextmanager
def database_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn SQLite's errors into a one-line StoreError that names the file."""
    try:
        yield
    except sqlite3.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(f"{path}: cannot {doing}: {reason}") from exc


@contextlib.asynccontextmanager
async def immediate_transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error and on cancellation.

    BEGIN is inside the try: a cancel that interrupts the wait for it does not stop aiosqlite
    from running it, and only the ROLLBACK queued after it keeps the connection from staying
    in a transaction (every later BEGIN would fail "within a transaction").
    """
    try:
        await db.execute("BEGIN IMMEDIATE")
        yield
        await db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error, ValueError):  # none active; connection closed
            await db.execute("ROLLBACK")
        raise


def create_private_file(path: Path) -> None:
    """The store's file and its directory, readable by the user alone."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


async def connect(path: Path) -> aiosqlite.Connection:
    """A connection in autocommit mode with the store's pragmas set."""
    # A cancel (Ctrl-C) while opening waits for the connection and closes it, so that its
    # thread ends now rather than call back into a closed event loop (or never end).
    connecting = asyncio.ensure_future(aiosqlite.connect(path, isolation_level=None))
    db: aiosqlite.Connection | None = None
    try:
        db = await asyncio.shield(connecting)
        db.row_factory = sqlite3.Row
        # The busy timeout comes first: switching a new file to WAL takes a lock that another
        # process opening the same new store may hold for a moment.
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await _switch_to_wal(db)
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        if db is None:
            with contextlib.suppress(Exception):
                db = await connecting
        if db is not None:
            await db.close()
        raise
    return db


async def _switch_to_wal(db: aiosqlite.Connection) -> None:
    """WAL mode. Switching a new file can fail "database is locked" at once, without the busy
    timeout, while another process opening the same new store switches it: try again."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02 + random.random() * 0.05)


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Bring the schema up to date; safe when several processes open a new store at once."""
    version = await _user_version(db)
    _refuse_newer(path, version)
    if version == len(MIGRATIONS):
        return
    async with immediate_transaction(db):
        # Another process may have migrated between the read above and taking the lock.
        version = await _user_version(db)
        _refuse_newer(path, version)
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript would commit first, so the statements go one by one inside the
            # transaction that also bumps the version.
            for statement in split_statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number}")


def split_statements(script: str) -> list[str]:
    """The statements of an SQL script (triggers and comments included), in order."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current[:60]!r}")
    return statements


async def _user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _refuse_newer(path: Path, version: int) -> None:
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path}: the store has schema version {version}, newer than this looptui knows; "
            "upgrade looptui"
        )
