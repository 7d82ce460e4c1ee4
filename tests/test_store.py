"""The memory store: batching, durability, privacy, migrations, search and crash detection."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from looptui.engine.errors import LooptuiError
from looptui.engine.models import Note, NoteKind, Run, RunStatus
from looptui.engine.secrets import REDACTED, Redactor
from looptui.engine.store import Store
from looptui.engine.store.schema import SCHEMA_VERSION
from looptui.protocol.events import AgentSaid, OutputPrinted, StatusChanged


def a_run(run_id: str = "r1", **fields: object) -> Run:
    values: dict[str, object] = dict(
        id=run_id,
        loop="fix",
        agent="a",
        status=RunStatus.QUEUED,
        prompt="p",
        base_branch="main",
        base_commit="0" * 40,
        branch=f"looptui/fix/{run_id}",
        worktree=f"/tmp/{run_id}",
        max_iterations=3,
        created_at=time.time(),
    )
    values.update(fields)
    return Run(**values)  # type: ignore[arg-type]


def count_rows(path: Path, table: str = "events") -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_store_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.db"
    store = await Store.open(path)
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_events_are_written_in_batches_not_one_commit_each(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    for index in range(1200):
        store.emit("r1", OutputPrinted(f"line {index}"), 1)
    await store.flush()
    assert store.events_written == 1200
    assert store.batches_written <= 5  # 500 per batch at most: three, plus slack
    events = await store.events("r1")
    assert [e.payload for e in events] == [OutputPrinted(f"line {i}") for i in range(1200)]
    assert [e.id for e in events] == sorted(e.id for e in events if e.id is not None)
    await store.close()


async def test_a_lone_event_is_written_and_published_after_a_short_wait(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    subscription = store.subscribe("r1")
    store.emit("r2", OutputPrinted("someone else's"))
    store.emit("r1", OutputPrinted("hello"))
    event = await asyncio.wait_for(subscription.queue.get(), timeout=5)
    assert event is not None and event.payload == OutputPrinted("hello") and event.id is not None
    assert count_rows(store.path) == 2  # written before it was published
    await store.close()


async def test_close_writes_every_pending_event(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    for index in range(777):
        store.emit("r1", OutputPrinted(str(index)))
    await store.close()
    assert count_rows(path) == 777


async def test_two_stores_on_one_file_never_lose_or_share_event_ids(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first, second = await Store.open(path), await Store.open(path)
    for index in range(600):
        first.emit("a", OutputPrinted(str(index)))
        second.emit("b", OutputPrinted(str(index)))
    await asyncio.gather(first.close(), second.close())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(DISTINCT id), count(*) FROM events").fetchone() == (
            1200,
            1200,
        )


async def test_secrets_never_reach_the_database(tmp_path: Path) -> None:
    secret = "s3cr3t-value-0123456789"
    redactor = Redactor.from_environment({"MY_SERVICE_TOKEN": secret, "HOME": "/root"})
    store = await Store.open(tmp_path / "s.db", redactor)
    subscription = store.subscribe()
    await store.insert_run(a_run(prompt=f"use {secret}"))
    store.emit("r1", OutputPrinted(f"token={secret}"))
    store.emit("r1", AgentSaid("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz"))
    await store.add_note(Note("r1", 1, NoteKind.PROBLEM, f"leaked {secret}"))
    await store.update_run("r1", error=f"failed with {secret}")
    await store.flush()
    published = await subscription.queue.get()
    assert published is not None and published.payload == OutputPrinted(f"token={REDACTED}")
    await store.close()
    raw = b"".join(part.read_bytes() for part in tmp_path.glob("s.db*"))
    with sqlite3.connect(tmp_path / "s.db") as db:
        dump = "\n".join(db.iterdump())
    assert secret not in dump and "sk-ant-api03" not in dump
    assert secret.encode() not in raw
    assert REDACTED in dump


async def test_full_text_search_finds_output_and_notes(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    await store.insert_run(a_run())
    store.emit("r1", OutputPrinted("ZeroDivisionError in mean"))
    store.emit("r1", StatusChanged(RunStatus.RUNNING))
    await store.flush()
    [hit] = await store.search("ZeroDivisionError")
    assert (hit.source, hit.kind, hit.run_id) == ("event", "output", "r1")
    assert hit.snippet == "ZeroDivisionError in mean" and hit.marks == ((0, 17),)
    await store.close()


async def test_last_events_of_a_run_come_in_order(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    for index in range(50):
        store.emit("r1", OutputPrinted(str(index)))
    await store.flush()
    last = await store.events("r1", limit=3)
    assert [e.payload for e in last] == [OutputPrinted(n) for n in ("47", "48", "49")]
    await store.close()


async def test_runs_of_a_dead_process_are_marked_interrupted(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store = await Store.open(tmp_path / "s.db")
    await store.insert_run(a_run("alive", status=RunStatus.RUNNING))
    await store.insert_run(a_run("dead", status=RunStatus.RUNNING))
    await store.update_run("dead", owner_pid=int(dead.stdout))
    assert await store.mark_interrupted() == ["dead"]
    assert (await store.run("dead")).status is RunStatus.INTERRUPTED
    assert (await store.run("alive")).status is RunStatus.RUNNING
    await store.close()


async def test_a_store_from_a_newer_looptui_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LooptuiError, match="newer"):
        await Store.open(path)


async def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    await store.insert_run(a_run())
    await store.add_note(Note("r1", 1, NoteKind.LESSON, "pytest needs -p no:cacheprovider"))
    await store.close()
    store = await Store.open(path)
    assert (await store.find_run("r")).id == "r1"
    assert [n.text for n in await store.notes("r1")] == ["pytest needs -p no:cacheprovider"]
    await store.close()


async def test_a_store_of_the_first_version_gains_unknown_and_flagged_verdicts(
    tmp_path: Path,
) -> None:
    from looptui.engine.models import Flag, Verdict
    from looptui.engine.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # what the first release left on disk
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        db.execute("PRAGMA foreign_keys = OFF")  # the run's row is not needed for this test
        db.execute(
            "INSERT INTO verdicts (run_id, iteration, done, evaluator, confidence, reasons, "
            "next_steps, created_at) VALUES ('r1', 1, 1, 'checks', 1.0, '[]', '[]', 0)"
        )
    store = await Store.open(path)
    try:
        await store.insert_run(a_run("r1"))
        await store.add_verdict("r1", 2, Verdict(False, "judge", 0.0, ("garbage",), (), True))
        flag = Flag("test-removed", "tests/test_a.py", 7, "test_a was deleted")
        await store.add_verdict("r1", 3, Verdict(True, "checks", flags=(flag,)))
        verdicts = [verdict for _, verdict in await store.verdicts("r1")]
        assert [(v.done, v.unknown) for v in verdicts] == [
            (True, False),
            (False, True),
            (False, False),
        ]
        assert verdicts[0].flags == () and verdicts[2].flags == (flag,)
        assert verdicts[2].outcome == "flagged"
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 14
