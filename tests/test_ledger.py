"""The ledger of firings and the stored schedule: settling, order, privacy, restarts and the
migration that brings them to an older store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from looptui.engine.secrets import REDACTED, Redactor
from looptui.engine.store import Store
from looptui.engine.store.ledger import Outcome, ScheduleEntry
from looptui.engine.store.schema import SCHEMA_VERSION
from test_store import a_run


async def test_a_firing_is_recorded_pending_and_settled_each_way(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        first = await store.record_firing(
            "fix", "nightly", due_at=100.0, payload={"n": 1}, fired_at=101.5
        )
        (pending,) = await store.pending_firings("fix")
        assert (pending.id, pending.outcome, pending.due_at, pending.fired_at) == (
            first,
            Outcome.PENDING,
            100.0,
            101.5,
        )
        assert pending.payload == {"n": 1} and pending.trigger == "nightly"

        settlements: dict[Outcome, dict[str, object]] = {
            Outcome.STARTED: {"run_id": "r1"},
            Outcome.NOTHING_TO_DO: {"reason": "the goal already holds"},
            Outcome.SKIPPED: {"reason": "r1 is still running"},
            Outcome.COALESCED: {"coalesced_into": first},
            Outcome.MISSED: {},
            Outcome.DEFERRED: {"retry_at": 500.0},
            Outcome.REFUSED: {"reason": "hook exited 2"},
            Outcome.FAILED: {"reason": "no such agent"},
        }
        ids = {}
        for outcome, fields in settlements.items():
            ids[outcome] = await store.record_firing("fix", "watch", due_at=time.time())
            await store.settle_firing(ids[outcome], outcome, **fields)  # type: ignore[arg-type]
        await store.settle_firing(first, Outcome.STARTED, run_id="r0")

        assert await store.pending_firings("fix") == []
        stored = {firing.id: firing for firing in await store.firings("fix")}
        for outcome, fields in settlements.items():
            firing = stored[ids[outcome]]
            assert firing.outcome is outcome
            assert firing.run_id == fields.get("run_id")
            assert firing.reason == fields.get("reason")
            assert firing.coalesced_into == fields.get("coalesced_into")
            assert firing.retry_at == fields.get("retry_at")
        assert stored[first].outcome is Outcome.STARTED and stored[first].run_id == "r0"
    finally:
        await store.close()


async def test_a_settlement_missing_what_its_outcome_needs_is_refused(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        firing = await store.record_firing("fix", "cron", due_at=1.0)
        for outcome in (Outcome.PENDING, Outcome.COALESCED, Outcome.DEFERRED, Outcome.FAILED):
            with pytest.raises(ValueError):
                await store.settle_firing(firing, outcome)
        with pytest.raises(LookupError, match="no firing 999"):
            await store.settle_firing(999, Outcome.MISSED)
        assert [f.outcome for f in await store.pending_firings()] == [Outcome.PENDING]
    finally:
        await store.close()


async def test_firings_come_newest_first_within_the_limit_and_by_loop(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        recorded = [
            await store.record_firing(loop, "cron", due_at=float(n), payload={"n": n})
            for n, loop in enumerate(["fix", "docs", "fix", "fix", "docs"])
        ]
        assert [f.id for f in await store.firings()] == recorded[::-1]
        assert [f.id for f in await store.firings(limit=2)] == recorded[:2:-1]
        assert [f.payload["n"] for f in await store.firings("fix")] == [3, 2, 0]
        assert [f.payload["n"] for f in await store.firings("fix", limit=1)] == [3]
        await store.settle_firing(recorded[2], Outcome.MISSED)
        assert [f.id for f in await store.pending_firings("fix")] == [recorded[0], recorded[3]]
        assert len(await store.pending_firings()) == 4
    finally:
        await store.close()


async def test_firings_from_two_connections_at_once_each_get_their_own_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    one, two = await Store.open(path), await Store.open(path)
    try:
        ids = await asyncio.gather(
            *(
                store.record_firing("fix", "cron", due_at=float(n), payload={"n": n})
                for n in range(10)
                for store in (one, two)
            )
        )
        assert len(set(ids)) == 20
        stored = {f.id: f.payload["n"] for f in await one.firings(limit=100)}
        assert sorted(stored) == sorted(ids)
    finally:
        await one.close()
        await two.close()


async def test_a_secret_in_a_firing_is_stored_redacted(tmp_path: Path) -> None:
    secret = "hook-secret-0123456789"
    store = await Store.open(tmp_path / "s.db", Redactor([secret]))
    try:
        firing = await store.record_firing(
            "fix", "webhook", due_at=1.0, payload={"body": {"token": secret, "list": [secret]}}
        )
        await store.settle_firing(firing, Outcome.FAILED, reason=f"401 for {secret}")
        (read,) = await store.firings()
        assert read.payload == {"body": {"token": REDACTED, "list": [REDACTED]}}
        assert read.reason == f"401 for {REDACTED}"
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        payload, reason = db.execute("SELECT payload, reason FROM firings").fetchone()
    assert secret not in payload and secret not in reason
    assert json.loads(payload)["body"]["token"] == REDACTED


async def test_the_schedule_upserts_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    try:
        assert await store.schedule_entry("fix", "nightly") is None
        await store.set_schedule("fix", "nightly", next_due_at=1000.0, spec="cron 0 3 * * *")
        await store.set_schedule("docs", "watch")
        await store.set_schedule("fix", "hourly", next_due_at=3600.0, anchor=0.0)
        # only the fields given change
        await store.set_schedule("fix", "nightly", paused=True)
        await store.set_schedule("fix", "nightly", next_due_at=2000.0)
        assert await store.schedule_entry("fix", "nightly") == ScheduleEntry(
            "fix", "nightly", 2000.0, paused=True, spec="cron 0 3 * * *"
        )
        await store.set_schedule("fix", "nightly", paused=False)
        waiting = await store.record_firing("fix", "nightly", due_at=1000.0)
        starting = await store.record_firing("fix", "hourly", due_at=3600.0)
        await store.link_firing(starting, "r1")
    finally:
        await store.close()

    store = await Store.open(path)  # a restart
    try:
        assert await store.schedule() == [
            ScheduleEntry("docs", "watch", None),
            ScheduleEntry("fix", "hourly", 3600.0, anchor=0.0),
            ScheduleEntry("fix", "nightly", 2000.0, paused=False, spec="cron 0 3 * * *"),
        ]
        assert [f.id for f in await store.pending_firings("fix")] == [waiting, starting]
        # the loop's queued firing is the pending one with no run; the other is starting
        assert [f.id for f in await store.pending_firings("fix", queued=True)] == [waiting]
        (linked,) = await store.pending_firings("fix", queued=False)
        assert (linked.id, linked.run_id) == (starting, "r1")
        # settled later, it keeps the run it was linked to
        await store.settle_firing(starting, Outcome.FAILED, reason="no worktree")
        assert (await store.firing(starting)).run_id == "r1"
    finally:
        await store.close()


async def test_a_firing_with_an_outcome_known_at_once_is_recorded_settled(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        first = await store.record_firing("fix", "cron", due_at=1.0)
        skipped = await store.record_firing(
            "fix", "watch", due_at=2.0, outcome=Outcome.SKIPPED, reason="r1 is running"
        )
        folded = await store.record_firing(
            "fix", "git", due_at=2.0, outcome=Outcome.COALESCED, coalesced_into=first
        )
        await store.set_firing_payload(first, {"changed_paths": ["a.py", "b.py"]})
        assert (await store.firing(skipped)).reason == "r1 is running"
        assert (await store.firing(folded)).coalesced_into == first
        assert (await store.firing(first)).payload == {"changed_paths": ["a.py", "b.py"]}
        with pytest.raises(ValueError, match="coalesced into"):
            await store.record_firing("fix", "git", due_at=3.0, outcome=Outcome.COALESCED)
        await store.settle_firing(first, Outcome.NOTHING_TO_DO, reason="the goal holds")
        with pytest.raises(LookupError, match="no pending firing"):  # settled: not changed
            await store.set_firing_payload(first, {})
        with pytest.raises(LookupError, match="no firing 999"):
            await store.firing(999)
    finally:
        await store.close()


async def test_a_store_of_schema_six_gains_the_ledger_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = await Store.open(path)
    await store.insert_run(a_run("r1"))
    await store.close()
    with sqlite3.connect(path) as db:  # back to what the release with schema 6 left on disk
        db.execute("DROP TABLE firings")
        db.execute("DROP TABLE schedule")
        db.execute("ALTER TABLE runs DROP COLUMN retry_at")  # schema 9's
        undo_memory(db)  # schemas 11 and 12
        db.execute("PRAGMA user_version = 6")

    store = await Store.open(path)
    try:
        assert [run.id for run in await store.runs()] == ["r1"]
        firing = await store.record_firing("fix", "cron", due_at=1.0)
        await store.settle_firing(firing, Outcome.STARTED, run_id="r1")
        await store.set_schedule("fix", "cron", next_due_at=61.0)
        assert [(f.outcome, f.run_id) for f in await store.firings()] == [(Outcome.STARTED, "r1")]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 14
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        columns = {row[1] for row in db.execute("PRAGMA table_info(schedule)")}
    assert {"firings", "firings_by_loop", "firings_pending", "schedule"} <= tables
    assert {"anchor", "spec"} <= columns and "waiting_firing" not in columns


async def test_a_store_of_schema_nine_takes_each_git_triggers_tip_from_its_last_firing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = await Store.open(path)
    await store.set_schedule("docs", "git", next_due_at=None)
    await store.set_schedule("docs", "cron", next_due_at=61.0)
    for sha in ("aaa", "bbb"):
        await store.record_firing("docs", "git", due_at=1.0, payload={"commit": {"sha": sha}})
    await store.record_firing("docs", "cron", due_at=2.0, payload={"fired_by": "cron"})
    await store.close()
    with sqlite3.connect(path) as db:  # back to schema 9
        db.execute("ALTER TABLE schedule DROP COLUMN last_tip")
        undo_memory(db)  # schemas 11 and 12
        db.execute("PRAGMA user_version = 9")

    store = await Store.open(path)
    try:
        tips = {entry.trigger: entry.last_tip for entry in await store.schedule()}
        assert tips == {"git": "bbb", "cron": None}
    finally:
        await store.close()


async def test_a_tip_and_its_firing_are_stored_together(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        assert await store.record_tip("docs", "git", "aaa") is None  # a baseline: no firing
        firing_id = await store.record_tip("docs", "git", "bbb", fire=(5.0, {"commit": "bbb"}))
        assert firing_id is not None
        firing = await store.firing(firing_id)
        assert (firing.outcome, firing.due_at, firing.payload) == (
            Outcome.PENDING,
            5.0,
            {"commit": "bbb"},
        )
        entry = await store.schedule_entry("docs", "git")
        assert entry is not None and entry.last_tip == "bbb"
    finally:
        await store.close()


def undo_memory(db: sqlite3.Connection) -> None:
    """Take a store back to before schema 11 (the memory's provenance), 12 (the system
    prompts) and 14 (the review kept)."""
    db.execute("DROP TABLE review_decisions")
    db.execute("ALTER TABLE runs DROP COLUMN review")
    for column in ("system_prompt", "system_appended"):
        db.execute(f"ALTER TABLE iterations DROP COLUMN {column}")
    db.execute("DROP TRIGGER notes_fts_delete")
    db.execute("DROP TRIGGER notes_fts_update")
    db.execute("DROP INDEX notes_by_loop")
    for column in ("loop", "status", "sources", "edited_at", "uses", "seen", "key"):
        db.execute(f"ALTER TABLE notes DROP COLUMN {column}")
