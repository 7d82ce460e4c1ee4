"""The typed event protocol: payloads round-trip, old rows read back typed, secrets redacted."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import msgspec
import pytest

from looptui.engine.models import Flag, NoteKind, RunStatus
from looptui.engine.secrets import REDACTED, Redactor
from looptui.engine.store import Store
from looptui.protocol.events import (
    AgentFinished,
    AgentSaid,
    AnyPayload,
    CheckRan,
    Committed,
    ErrorReported,
    Event,
    EventKind,
    GateRan,
    HookRan,
    IterationMarked,
    NoteAdded,
    OutputPrinted,
    StatusChanged,
    TokensUsed,
    ToolAnswered,
    ToolCalled,
    VerdictGiven,
    decode_payload,
    payload_fields,
    payload_from_fields,
)
from test_store import a_run

FLAG = Flag("test-removed", "tests/test_a.py", 7, "test_a was deleted")

# One of each kind, every field away from its default where it has one.
EXAMPLES: list[AnyPayload] = [
    StatusChanged(RunStatus.FAILED, error="the agent could not start"),
    IterationMarked("started", max=3),
    IterationMarked("finished", done=True),
    OutputPrinted("collected 3 items", stream="stderr"),
    AgentSaid("I will fix the mean."),
    ToolCalled("edit", input={"path": "a.py", "edits": [{"old": "x", "new": "y"}], "n": 2}),
    ToolAnswered("bash", output="1 failed", is_error=True),
    TokensUsed(input_tokens=12, output_tokens=20, cost_usd=0.25),
    ErrorReported("the agent's turn timed out after 1.5s"),
    AgentFinished(ok=False, message="exit 2", exit_code=2),
    Committed("a" * 40, files=2, added=10, removed=3),
    CheckRan("tests", "pytest -q", exit_code=1, passed=False, timed_out=True, duration=1.5),
    GateRan("b" * 40, passed=True, duration=0.5, ignored=("build/out.o",)),
    VerdictGiven(
        done=False,
        evaluator="checks",
        confidence=0.5,
        reasons=("tests failed",),
        next_steps=("fix mean",),
        unknown=True,
        flags=(FLAG,),
    ),
    NoteAdded(NoteKind.LESSON, "pytest needs -p no:cacheprovider"),
    HookRan(
        "before_merge",
        "./freeze.sh",
        exit_code=2,
        blocked=True,
        timed_out=False,
        duration=0.125,
        stdout="checked",
        stderr="release freeze",
    ),
]


def test_the_examples_cover_every_kind() -> None:
    assert {payload.kind for payload in EXAMPLES} == set(EventKind)


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.kind.value)
def test_a_payload_round_trips_through_its_stored_fields(payload: AnyPayload) -> None:
    fields = payload_fields(payload)
    assert "event" not in fields  # the kind has a column of its own
    json.dumps(fields)  # plain JSON data, as the store keeps it
    assert payload_from_fields(payload.kind, fields) == payload
    assert decode_payload(payload.kind.value, json.dumps(fields)) == payload


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.kind.value)
def test_an_event_round_trips_through_json_as_a_tagged_union(payload: AnyPayload) -> None:
    event = Event("r1", payload, iteration=2, ts=1.5, id=7)
    encoded = msgspec.json.encode(event)
    assert json.loads(encoded)["payload"]["event"] == payload.kind.value
    decoded = msgspec.json.decode(encoded, type=Event)
    assert decoded == event and type(decoded.payload) is type(payload)
    assert decoded.kind is payload.kind


def test_a_note_is_stored_with_its_kind_under_kind() -> None:
    assert payload_fields(NoteAdded(NoteKind.PROGRESS, "t")) == {"kind": "progress", "text": "t"}


# Rows as the looptui before typed events wrote them (its runner's `emit` keyword arguments).
OLD_ROWS = [
    (EventKind.NOTE, {"kind": "progress", "text": "t"}, NoteAdded(NoteKind.PROGRESS, "t")),
    (EventKind.STATUS, {"status": "running"}, StatusChanged(RunStatus.RUNNING)),
    (
        EventKind.STATUS,
        {"status": "failed", "error": "run timed out after 1s"},
        StatusChanged(RunStatus.FAILED, "run timed out after 1s"),
    ),
    (
        EventKind.VERDICT,
        {
            "done": False,
            "unknown": False,
            "evaluator": "checks",
            "confidence": 1.0,
            "reasons": ["a test was removed"],
            "next_steps": [],
            "flags": [FLAG.to_data()],
        },
        VerdictGiven(False, "checks", 1.0, ("a test was removed",), flags=(FLAG,)),
    ),
    (
        EventKind.GATE,
        {"commit": "c" * 40, "passed": False, "duration": 0.25, "ignored": ["x.pyc"]},
        GateRan("c" * 40, False, 0.25, ("x.pyc",)),
    ),
    (
        EventKind.ITERATION,
        {"phase": "started", "max": 3},
        IterationMarked("started", max=3),
    ),
]


@pytest.mark.parametrize(("kind", "data", "expected"), OLD_ROWS, ids=lambda v: str(v)[:30])
def test_a_row_in_the_old_format_reads_as_its_typed_payload(
    kind: EventKind, data: dict[str, object], expected: AnyPayload
) -> None:
    assert decode_payload(kind.value, json.dumps(data)) == expected


async def test_old_rows_in_a_real_store_read_back_typed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO events (run_id, iteration, ts, kind, data) VALUES ('r1', 1, 0, ?, ?)",
            [(kind.value, json.dumps(data)) for kind, data, _ in OLD_ROWS],
        )
    store = await Store.open(path)
    try:
        events = await store.events("r1")
    finally:
        await store.close()
    assert [event.payload for event in events] == [expected for _, _, expected in OLD_ROWS]


def test_a_row_that_does_not_fit_its_type_reads_as_an_error_naming_its_kind() -> None:
    payload = decode_payload("status", json.dumps({"status": "bogus"}))
    assert isinstance(payload, ErrorReported)
    assert "a stored status event could not be read" in payload.message
    assert "bogus" in payload.message
    damaged = decode_payload("verdict", "{not json")
    assert isinstance(damaged, ErrorReported) and "verdict" in damaged.message


def test_fields_that_do_not_fit_are_a_value_error_naming_the_kind() -> None:
    with pytest.raises(ValueError, match="a status event does not fit its type"):
        payload_from_fields(EventKind.STATUS, {"status": "bogus"})


SECRET = "s3cr3t-value-123"


async def test_secrets_in_a_line_and_a_nested_tool_input_are_redacted_everywhere(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "s.db", Redactor([SECRET]))
    subscription = store.subscribe("r1")
    store.emit("r1", OutputPrinted(f"token={SECRET}"), 1)
    nested = {"env": {"TOKEN": SECRET}, "argv": ["curl", f"-H=Bearer {SECRET}"], "n": 1}
    store.emit("r1", ToolCalled("bash", input=nested), 1)
    await store.flush()
    published = [await asyncio.wait_for(subscription.queue.get(), 5) for _ in range(2)]
    stored = await store.events("r1")
    await store.close()

    expected = [
        OutputPrinted(f"token={REDACTED}"),
        ToolCalled(
            "bash",
            input={"env": {"TOKEN": REDACTED}, "argv": ["curl", f"-H=Bearer {REDACTED}"], "n": 1},
        ),
    ]
    assert [event.payload for event in stored] == expected
    assert [event.payload for event in published if event is not None] == expected
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert SECRET not in "\n".join(db.iterdump())


async def test_a_reader_that_falls_far_behind_costs_no_memory_and_misses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_BACKLOG waiting events a subscription is given no more; its feed takes what
    it had, reads what it missed from the store, then goes live again: every event, in
    order, once."""
    from looptui.engine.store import writer
    from looptui.engine.store.feed import CursorFeed

    monkeypatch.setattr(writer, "MAX_BACKLOG", 50)
    store = await Store.open(tmp_path / "store.db")
    try:
        await store.insert_run(a_run("r1"))
        feed = CursorFeed(store, "r1", None)
        for number in range(500):  # nobody reads meanwhile
            store.emit("r1", OutputPrinted(f"line {number}"), 1)
            if number % 100 == 99:
                await store.flush()
        await store.flush()
        assert feed._live.queue.qsize() <= 50  # the backlog stayed bounded
        seen: list[Event] = []
        while len(seen) < 500:
            batch = await asyncio.wait_for(feed.next_batch(), 10)
            assert batch is not None
            seen += batch
        store.emit("r1", OutputPrinted("live again"), 1)  # and it is live once more
        await store.flush()
        live = await asyncio.wait_for(feed.next_batch(), 10)
        feed.close()
    finally:
        await store.close()
    lines = [e.payload.line for e in seen if isinstance(e.payload, OutputPrinted)]
    assert lines == [f"line {n}" for n in range(500)]
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids))  # no duplicate
    assert live is not None and [e.payload for e in live] == [OutputPrinted("live again")]
