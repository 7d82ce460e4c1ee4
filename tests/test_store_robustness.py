"""The store under stress: concurrent opening, floods, bad data, failed writes, damage."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.secrets import REDACTED, Redactor
from looptui.engine.store import Store, database
from looptui.engine.store import store as store_module
from looptui.engine.store.database import StoreError
from looptui.engine.store.schema import SCHEMA_VERSION
from looptui.engine.store.writer import MAX_PENDING
from looptui.protocol.events import (
    ErrorReported,
    OutputPrinted,
    StatusChanged,
    ToolCalled,
)
from test_store import a_run, count_rows

OPENER = textwrap.dedent(
    """\
    import asyncio, sys, time
    from pathlib import Path
    from looptui.engine.store import Store

    go = Path(sys.argv[2])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)

    async def main():
        store = await Store.open(Path(sys.argv[1]))
        await store.close()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("round_", range(3))
def test_several_processes_can_open_a_new_store_at_once(tmp_path: Path, round_: int) -> None:
    path, go = tmp_path / "data" / "store.db", tmp_path / "go"
    script = tmp_path / "open_store.py"
    script.write_text(OPENER)
    openers = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    for opener in openers:  # every process imported looptui and waits at the start line
        assert opener.stdout is not None and opener.stdout.readline() == "ready\n"
    go.touch()
    results = [opener.communicate(timeout=60) for opener in openers]
    errors = [stderr for _, stderr in results if stderr.strip()]
    assert errors == [] and all(opener.returncode == 0 for opener in openers)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_flood_of_output_is_bounded_and_the_drop_is_told(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    flood = MAX_PENDING * 3
    for index in range(flood):  # all at once: the writer gets no turn in between
        store.emit("r1", OutputPrinted(f"spam {index}"), 1)
    store.emit("r1", StatusChanged(RunStatus.FAILED))  # never dropped
    await store.flush()
    stored = count_rows(store.path)
    assert store.events_dropped == flood - MAX_PENDING
    assert stored == MAX_PENDING + 2  # what fitted, the status and the note
    events = await store.events("r1")
    assert events[MAX_PENDING - 1].payload == OutputPrinted(f"spam {MAX_PENDING - 1}")
    note = events[MAX_PENDING]  # where the lines went missing
    assert isinstance(note.payload, OutputPrinted) and note.iteration == 1
    assert note.payload.stream == "looptui"
    assert f"{flood - MAX_PENDING} lines of output dropped" in note.payload.line
    assert events[-1].payload == StatusChanged(RunStatus.FAILED)
    await store.close()


async def test_data_json_cannot_hold_becomes_text_and_what_cannot_be_stored_fails_the_emit(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "s.db")
    subscription = store.subscribe("r1")
    store.emit("r1", ToolCalled("edit", input={"path": Path("a b.py")}))
    with pytest.raises(TypeError, match="JSON"):
        store.emit("r1", ToolCalled("edit", input={(1, 2): "tuple keys"}))  # type: ignore[dict-item]
    store.emit("r1", OutputPrinted("bad bytes \udcff survive"))
    await asyncio.wait_for(store.flush(), timeout=10)
    published = [await subscription.queue.get() for _ in range(2)]
    stored = await store.events("r1")
    assert [e.payload for e in stored] == [e.payload for e in published if e is not None]
    assert stored[0].payload == ToolCalled("edit", input={"path": "a b.py"})
    assert stored[1].payload == OutputPrinted("bad bytes \udcff survive")
    await store.close()


async def test_a_batch_that_cannot_be_written_fails_flush_instead_of_hanging(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    with sqlite3.connect(path) as db:  # a write error of the disk-full kind, for every batch
        db.execute(
            "CREATE TRIGGER no_room BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    store.emit("r1", OutputPrinted("lost"))
    with pytest.raises(LooptuiError, match="cannot write events") as failure:
        await asyncio.wait_for(store.flush(), timeout=20)
    assert str(path) in str(failure.value) and "\n" not in str(failure.value)
    with pytest.raises(LooptuiError, match="cannot write events"):
        store.emit("r1", OutputPrinted("later"))
    with pytest.raises(LooptuiError, match="cannot write events"):
        await asyncio.wait_for(store.flush(), timeout=5)
    await asyncio.wait_for(store.close(), timeout=5)


async def test_a_direct_write_is_committed_when_it_returns_even_while_events_are_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    await store.insert_run(a_run())
    reader = sqlite3.connect(path)

    async def flood() -> None:
        for index in range(20_000):
            store.emit("r1", OutputPrinted(str(index)))
            if index % 50 == 0:
                await asyncio.sleep(0)

    flooding = asyncio.create_task(flood())
    for number in range(1, 200):
        await store.update_run("r1", iterations=number)
        # Another connection sees it at once: it was not left inside the writer's transaction.
        seen = reader.execute("SELECT iterations FROM runs WHERE id = 'r1'").fetchone()[0]
        assert seen == number
    await flooding
    await store.close()
    reader.close()


async def test_a_damaged_store_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not an SQLite database, whatever its name says" * 100)
    with pytest.raises(LooptuiError) as failure:
        await Store.open(path)
    message = str(failure.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "not a database" in message


async def test_loop_definitions_are_stored_redacted(tmp_path: Path) -> None:
    secret = "loop-secret-0123456789"
    store = await Store.open(tmp_path / "s.db", Redactor([secret]))
    await store.record_loop("fix", {"prompt": f"log in with {secret}", "checks": [{"run": "x"}]})
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        (definition,) = db.execute("SELECT definition FROM loops").fetchone()
    assert secret not in definition
    assert json.loads(definition)["prompt"] == f"log in with {REDACTED}"


async def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    await store.insert_run(a_run())
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    waiting = asyncio.create_task(store.update_run("r1", iterations=1))
    await asyncio.sleep(0)  # the write has sent its BEGIN and waits for the lock
    waiting.cancel()  # Ctrl-C
    other.execute("COMMIT")
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await store.update_run("r1", iterations=2)  # the connection is not stuck in a transaction
    assert other.execute("SELECT iterations FROM runs").fetchone() == (2,)
    other.close()
    await store.close()


HOLD_LOCK = textwrap.dedent(
    """\
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("COMMIT")
    """
)


async def test_the_writer_recovers_from_a_long_outside_lock_and_counts_what_it_lost(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    store.emit("r1", OutputPrinted("0"))
    await store.flush()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "14"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    emitted = 1
    while holder.poll() is None:  # events keep coming while the store is locked
        store.emit("r1", OutputPrinted(str(emitted)))
        emitted += 1
        await asyncio.sleep(0.01)
    after = emitted
    for number in range(after, after + 100):
        store.emit("r1", OutputPrinted(str(number)))
    await asyncio.wait_for(store.flush(), timeout=30)
    events = await store.events("r1")
    await store.close()

    lines = [int(e.payload.line) for e in events if isinstance(e.payload, OutputPrinted)]
    [told] = [e.payload.message for e in events if isinstance(e.payload, ErrorReported)]
    lost = (after + 100) - len(lines)
    assert lost > 0, "the lock was not held long enough for the test to mean anything"
    events_word = "event" if lost == 1 else "events"
    assert told == (
        f"{lost} {events_word} could not be stored: the store was locked by another process"
    )
    # the first batch that met the lock was given up; everything after it was stored
    assert lines == [0, *range(lost + 1, after + 100)]


async def test_a_record_write_beside_a_read_waits_for_the_lock_instead_of_failing_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read and a record write on the store's connection at the same moment (a client
    reading while a run ends): the write's BEGIN must not run while the read holds its
    snapshot, where SQLite fails it "database is locked" at once, without its busy timeout
    (a write lock held elsewhere, or anything committed since the read began, the events
    writer's batches in the service). One attempt must be enough for a short lock."""
    monkeypatch.setattr(store_module, "LOCKED_ATTEMPTS", 1)
    path = tmp_path / "s.db"
    store = await Store.open(path)
    try:
        await store.insert_run(a_run())
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), "0.5"], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        # both start in the same step of the event loop: the write's BEGIN is queued on the
        # connection right behind the read's statement
        runs, _ = await asyncio.gather(store.runs(), store.update_run("r1", iterations=1))
        assert holder.wait(timeout=10) == 0  # the write waited for the lock's end, then wrote
        assert [run.id for run in runs] == ["r1"]
        assert (await store.run("r1")).iterations == 1
    finally:
        await store.close()


async def test_a_record_write_waits_out_a_lock_longer_than_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's final status must not be lost to a lock held a while: the write is tried
    again, up to LOCKED_ATTEMPTS busy timeouts."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 500)
    path = tmp_path / "s.db"
    store = await Store.open(path)
    await store.insert_run(a_run())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "0.9"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    await store.update_run("r1", status=RunStatus.SUCCEEDED)  # one busy timeout is not enough
    assert holder.wait(timeout=10) == 0
    assert (await store.run("r1")).status is RunStatus.SUCCEEDED
    # a lock outlasting every attempt is still a one-line error
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "5"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    with pytest.raises(StoreError, match="database is locked"):
        await store.update_run("r1", status=RunStatus.FAILED)
    holder.kill()
    holder.wait()
    assert (await store.run("r1")).status is RunStatus.SUCCEEDED
    await store.close()
