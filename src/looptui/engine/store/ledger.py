"""The ledger of trigger firings and the stored schedule (see docs/triggers.md).

A firing is a row, `pending`, before anything happens, and is settled with its outcome once
known; a firing whose run could not start is `failed`, never silently `started`. The schedule
holds every trigger's next fire time (and an `every`'s phase), so that a restart resumes it;
a loop's queued firing is its pending firing with no run yet.
`Store` is the records, this ledger and the events.
"""

from __future__ import annotations

import abc
import enum
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from looptui.engine.secrets import Redactor
from looptui.engine.store.writer import encode_data

_FIRING_COLUMNS = (
    "id, loop, trigger, due_at, fired_at, payload, outcome, run_id, reason, coalesced_into, "
    "retry_at"
)


class Outcome(enum.StrEnum):
    """What came of a firing."""

    PENDING = "pending"  # recorded; nothing has happened yet
    STARTED = "started"  # only once the run's first agent turn began
    NOTHING_TO_DO = "nothing_to_do"  # a `when` command said so, or the goal already held
    SKIPPED = "skipped"  # a run of the loop was already going (overlap)
    COALESCED = "coalesced"  # folded into another firing (`coalesced_into`)
    MISSED = "missed"  # the service was down and catch-up said skip
    DEFERRED = "deferred"  # a usage limit: tried again at `retry_at`
    REFUSED = "refused"  # a hook exited 2
    FAILED = "failed"  # the run could not start (`reason`)


@dataclass(frozen=True)
class Firing:
    """One firing of a loop's trigger, as the ledger holds it."""

    id: int
    loop: str
    trigger: str
    due_at: float  # when the trigger was due
    fired_at: float  # when it actually fired (later than due_at after a restart)
    payload: Mapping[str, Any]  # what the trigger carried (a webhook's body, changed paths...)
    outcome: Outcome
    run_id: str | None = None
    reason: str | None = None
    coalesced_into: int | None = None
    retry_at: float | None = None


@dataclass(frozen=True)
class ScheduleEntry:
    """A trigger's place in the stored schedule."""

    loop: str
    trigger: str
    next_due_at: float | None  # None: an event trigger, or one that never fires again
    paused: bool = False
    anchor: float | None = None  # when an `every` schedule began: its phase
    spec: str | None = None  # the trigger as configured when next_due_at was computed
    last_tip: str | None = None  # a `git` trigger's branch tip when it last looked


class _Keep(enum.Enum):
    """A schedule field `set_schedule` was not given: left as stored."""

    KEEP = enum.auto()


KEEP = _Keep.KEEP


def _check_settlement(
    outcome: Outcome,
    reason: str | None,
    coalesced_into: int | None,
    retry_at: float | None,
    run_id: str | None,
) -> None:
    if outcome is Outcome.PENDING:
        raise ValueError("a firing is settled with an outcome other than pending")
    if outcome is Outcome.COALESCED and coalesced_into is None:
        raise ValueError("a coalesced firing needs the firing it was coalesced into")
    if outcome is Outcome.DEFERRED and retry_at is None:
        raise ValueError("a deferred firing needs the time it is tried again (retry_at)")
    if outcome is Outcome.FAILED and not reason:
        raise ValueError("a failed firing needs the reason its run could not start")


def _firing_from_row(row: sqlite3.Row) -> Firing:
    return Firing(
        id=row["id"],
        loop=row["loop"],
        trigger=row["trigger"],
        due_at=row["due_at"],
        fired_at=row["fired_at"],
        payload=json.loads(row["payload"]),
        outcome=Outcome(row["outcome"]),
        run_id=row["run_id"],
        reason=row["reason"],
        coalesced_into=row["coalesced_into"],
        retry_at=row["retry_at"],
    )


def _entry_from_row(row: sqlite3.Row) -> ScheduleEntry:
    return ScheduleEntry(
        loop=row["loop"],
        trigger=row["trigger"],
        next_due_at=row["next_due_at"],
        paused=bool(row["paused"]),
        anchor=row["anchor"],
        spec=row["spec"],
        last_tip=row["last_tip"],
    )


class Ledger(abc.ABC):
    """The ledger's and the schedule's queries, over the connection a store provides."""

    redactor: Redactor

    @abc.abstractmethod
    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    @abc.abstractmethod
    async def _write(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, int]:
        """One statement in its own write transaction: (lastrowid, rowcount)."""

    @abc.abstractmethod
    async def _write_many(
        self, statements: Sequence[tuple[str, Iterable[Any]]]
    ) -> list[tuple[int, int]]:
        """Several statements in one write transaction, all or none."""

    # -- firings -------------------------------------------------------------------------------

    async def record_firing(
        self,
        loop: str,
        trigger: str,
        *,
        due_at: float,
        payload: Mapping[str, Any] | None = None,
        fired_at: float | None = None,
        outcome: Outcome = Outcome.PENDING,
        reason: str | None = None,
        coalesced_into: int | None = None,
    ) -> int:
        """Record a firing, pending (before anything happens) unless its outcome is known at
        once (skipped, coalesced, missed), and return its id.

        The payload is redacted like everything stored; values JSON has no type for are
        stored as their text. Raises TypeError for a payload that cannot be stored at all."""
        if outcome is not Outcome.PENDING:
            _check_settlement(outcome, reason, coalesced_into, retry_at=None, run_id=None)
        text = self._payload_text(payload)
        firing_id, _ = await self._write(
            "INSERT INTO firings (loop, trigger, due_at, fired_at, payload, outcome, reason, "
            "coalesced_into) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                loop,
                trigger,
                due_at,
                time.time() if fired_at is None else fired_at,
                text,
                outcome.value,
                None if reason is None else self.redactor.text(reason),
                coalesced_into,
            ),
        )
        return firing_id

    async def record_due(
        self,
        loop: str,
        trigger: str,
        *,
        next_due_at: float | None,
        fired_at: float,
        fire: tuple[float, Mapping[str, Any]] | None = None,
        missed: tuple[float, Mapping[str, Any], str] | None = None,
    ) -> int | None:
        """What a time trigger did when it fell due, in one transaction with its next fire
        time: a crash leaves all of it or none, so a fire time is never lost nor fired twice.

        `fire`: (due_at, payload) of the firing it makes, recorded pending (its id returned);
        `missed`: (due_at, payload, reason) of the row for the fire times it missed."""
        insert = (
            "INSERT INTO firings (loop, trigger, due_at, fired_at, payload, outcome, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        statements: list[tuple[str, Iterable[Any]]] = []
        rows: list[tuple[float, Mapping[str, Any], Outcome, str | None]] = []
        if missed is not None:
            rows.append((missed[0], missed[1], Outcome.MISSED, self.redactor.text(missed[2])))
        if fire is not None:
            rows.append((fire[0], fire[1], Outcome.PENDING, None))
        for due, payload, outcome, why in rows:
            values = (loop, trigger, due, fired_at, self._payload_text(payload))
            statements.append((insert, (*values, outcome.value, why)))
        statements.append(
            (
                "UPDATE schedule SET next_due_at = ? WHERE loop = ? AND trigger = ?",
                (next_due_at, loop, trigger),
            )
        )
        counted = await self._write_many(statements)
        return counted[-2][0] if fire is not None else None

    async def record_tip(
        self,
        loop: str,
        trigger: str,
        tip: str,
        *,
        fire: tuple[float, Mapping[str, Any]] | None = None,
    ) -> int | None:
        """A `git` trigger saw its branch at `tip`: store the tip, and (`fire`: due_at,
        payload) its pending firing, in one transaction, so that a crash neither loses the
        commits nor fires them twice. Returns the firing's id."""
        statements: list[tuple[str, Iterable[Any]]] = []
        if fire is not None:
            statements.append(
                (
                    "INSERT INTO firings (loop, trigger, due_at, fired_at, payload, outcome) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        loop,
                        trigger,
                        fire[0],
                        fire[0],
                        self._payload_text(fire[1]),
                        Outcome.PENDING.value,
                    ),
                )
            )
        statements.append(
            (
                "INSERT INTO schedule (loop, trigger, last_tip) VALUES (?, ?, ?) "
                "ON CONFLICT (loop, trigger) DO UPDATE SET last_tip = excluded.last_tip",
                (loop, trigger, tip),
            )
        )
        counted = await self._write_many(statements)
        return counted[0][0] if fire is not None else None

    def _payload_text(self, payload: Mapping[str, Any] | None) -> str:
        text, _ = encode_data(self.redactor.value(dict(payload or {})))
        return text

    async def link_firing(self, firing_id: int, run_id: str | None) -> None:
        """Name the run a pending firing starts (None: none, after all); it stays pending
        until the run's first agent turn begins (then `settle_firing(..., STARTED)`)."""
        await self._update_pending(firing_id, "run_id = ?", (run_id,))

    async def set_firing_payload(self, firing_id: int, payload: Mapping[str, Any]) -> None:
        """Replace a pending firing's payload: a queued firing gathers what the firings
        coalesced into it carried (changed paths, the newest commit)."""
        await self._update_pending(firing_id, "payload = ?", (self._payload_text(payload),))

    async def _update_pending(
        self, firing_id: int, assignment: str, params: tuple[Any, ...]
    ) -> None:
        _, changed = await self._write(
            f"UPDATE firings SET {assignment} WHERE id = ? AND outcome = ?",
            (*params, firing_id, Outcome.PENDING.value),
        )
        if not changed:
            raise LookupError(f"no pending firing {firing_id}")

    async def firing(self, firing_id: int) -> Firing:
        """One firing by id; LookupError when there is none."""
        rows = await self._fetchall(
            f"SELECT {_FIRING_COLUMNS} FROM firings WHERE id = ?", (firing_id,)
        )
        if not rows:
            raise LookupError(f"no firing {firing_id}")
        return _firing_from_row(rows[0])

    async def settle_firing(
        self,
        firing_id: int,
        outcome: Outcome,
        run_id: str | None = None,
        reason: str | None = None,
        coalesced_into: int | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Give a firing its outcome. A coalesced firing names the firing it went into, a
        deferred one when it is tried again, a failed one why; the reason is redacted."""
        _check_settlement(outcome, reason, coalesced_into, retry_at, run_id)
        if run_id is None:  # a firing linked to its run keeps it whatever becomes of it
            rows = await self._fetchall("SELECT run_id FROM firings WHERE id = ?", (firing_id,))
            run_id = rows[0]["run_id"] if rows else None
        _, changed = await self._write(
            "UPDATE firings SET outcome = ?, run_id = ?, reason = ?, coalesced_into = ?, "
            "retry_at = ? WHERE id = ?",
            (
                outcome.value,
                run_id,
                None if reason is None else self.redactor.text(reason),
                coalesced_into,
                retry_at,
                firing_id,
            ),
        )
        if not changed:
            raise LookupError(f"no firing {firing_id}")

    async def firings(self, loop: str | None = None, limit: int = 50) -> list[Firing]:
        """The newest `limit` firings, of one loop or of all, newest first."""
        query = f"SELECT {_FIRING_COLUMNS} FROM firings"
        params: list[Any] = []
        if loop is not None:
            query += " WHERE loop = ?"
            params.append(loop)
        rows = await self._fetchall(query + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [_firing_from_row(row) for row in rows]

    async def firings_with(self, outcome: Outcome) -> list[Firing]:
        """Every firing of that outcome, oldest first (after a restart: those deferred)."""
        rows = await self._fetchall(
            f"SELECT {_FIRING_COLUMNS} FROM firings WHERE outcome = ? ORDER BY id", (outcome.value,)
        )
        return [_firing_from_row(row) for row in rows]

    async def pending_firings(
        self, loop: str | None = None, *, queued: bool | None = None
    ) -> list[Firing]:
        """The firings not yet settled, of one loop or of all, oldest first: after a crash,
        the ones a restart must settle. `queued=True`: only those with no run yet (a loop's
        waiting firing); False: only those whose run is starting."""
        query = f"SELECT {_FIRING_COLUMNS} FROM firings WHERE outcome = ?"
        params: list[Any] = [Outcome.PENDING.value]
        if loop is not None:
            query += " AND loop = ?"
            params.append(loop)
        if queued is not None:
            query += " AND run_id IS NULL" if queued else " AND run_id IS NOT NULL"
        rows = await self._fetchall(query + " ORDER BY id", params)
        return [_firing_from_row(row) for row in rows]

    # -- the schedule ------------------------------------------------------------------------

    async def set_schedule(
        self,
        loop: str,
        trigger: str,
        *,
        next_due_at: float | _Keep | None = KEEP,
        paused: bool | _Keep = KEEP,
        anchor: float | _Keep | None = KEEP,
        spec: str | _Keep | None = KEEP,
        last_tip: str | _Keep | None = KEEP,
    ) -> None:
        """Add or change a trigger's schedule entry; the fields not given keep their stored
        value (a new entry starts with no due time, not paused, no anchor, spec or tip)."""
        given = {
            "next_due_at": next_due_at,
            "paused": paused,
            "anchor": anchor,
            "spec": spec,
            "last_tip": last_tip,
        }
        fields: dict[str, Any] = {
            name: int(value) if isinstance(value, bool) else value
            for name, value in given.items()
            if not isinstance(value, _Keep)
        }
        columns = "".join(f", {name}" for name in fields)
        marks = "".join(", ?" for _ in fields)
        update = (
            "DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in fields)
            if fields
            else "DO NOTHING"
        )
        await self._write(
            f"INSERT INTO schedule (loop, trigger{columns}) VALUES (?, ?{marks}) "
            f"ON CONFLICT (loop, trigger) {update}",
            (loop, trigger, *fields.values()),
        )

    async def schedule_entry(self, loop: str, trigger: str) -> ScheduleEntry | None:
        """A trigger's schedule entry, or None when it has none."""
        rows = await self._fetchall(
            "SELECT * FROM schedule WHERE loop = ? AND trigger = ?", (loop, trigger)
        )
        return _entry_from_row(rows[0]) if rows else None

    async def schedule(self) -> list[ScheduleEntry]:
        """Every trigger's schedule entry, by loop and trigger."""
        rows = await self._fetchall("SELECT * FROM schedule ORDER BY loop, trigger")
        return [_entry_from_row(row) for row in rows]
