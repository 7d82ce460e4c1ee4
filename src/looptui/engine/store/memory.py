"""The memory's queries: notes with their provenance, per loop (see engine/memory).

A note's text is redacted like everything stored. Its `sources` are a JSON list; a lesson
distilled again from a later run is the same row, seen once more, never a second proposal.
"""

from __future__ import annotations

import abc
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from looptui.engine.errors import LooptuiError
from looptui.engine.models import Note, NoteKind, NoteStatus, Source
from looptui.engine.secrets import Redactor

MAX_SOURCES = 20  # kept per note: the newest evidence
MAX_NOTE_CHARS = 4_000  # of a note the human writes: well within a prompt's memory bound


class NoteNotFound(LooptuiError):
    """No note has that id."""


def note_from_row(row: sqlite3.Row) -> Note:
    return Note(
        run_id=row["run_id"],
        iteration=row["iteration"],
        kind=NoteKind(row["kind"]),
        text=row["text"],
        created_at=row["created_at"],
        id=row["id"],
        loop=row["loop"],
        status=NoteStatus(row["status"]),
        sources=tuple(Source(**source) for source in json.loads(row["sources"] or "[]")),
        edited_at=row["edited_at"],
        uses=row["uses"],
        seen=row["seen"],
        key=row["key"],
    )


class MemoryRecords(abc.ABC):
    """Notes: written by runs, the distiller and the human; read by prompts and screens."""

    redactor: Redactor

    @abc.abstractmethod
    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    @abc.abstractmethod
    async def _write(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, int]:
        """One statement in its own write transaction: (lastrowid, rowcount)."""

    def _sources_text(self, sources: Sequence[Source]) -> str:
        kept = [
            {
                "kind": source.kind,
                "run_id": source.run_id,
                "iteration": source.iteration,
                "detail": self.redactor.text(source.detail),
            }
            for source in list(sources)[-MAX_SOURCES:]
        ]
        return json.dumps(kept)

    async def add_note(self, note: Note) -> int:
        """Store a note; returns its id. Its loop is its run's unless it names one."""
        note_id, _ = await self._write(
            "INSERT INTO notes (run_id, iteration, kind, text, created_at, loop, status, "
            "sources, seen, key) VALUES (?, ?, ?, ?, ?, "
            "coalesce(nullif(?, ''), (SELECT loop FROM runs WHERE id = ?), ''), ?, ?, ?, ?)",
            (
                note.run_id,
                note.iteration,
                note.kind.value,
                self.redactor.text(note.text),
                note.created_at or time.time(),
                note.loop,
                note.run_id,
                note.status.value,
                self._sources_text(note.sources),
                note.seen,
                note.key,
            ),
        )
        return note_id

    async def notes(self, run_id: str) -> list[Note]:
        """A run's own notes, oldest first (its lessons included)."""
        rows = await self._fetchall(
            "SELECT * FROM notes WHERE run_id = ? AND status != 'dismissed' ORDER BY id",
            (run_id,),
        )
        return [note_from_row(row) for row in rows]

    async def note(self, note_id: int) -> Note:
        rows = await self._fetchall(
            "SELECT * FROM notes WHERE id = ? AND status != 'dismissed'", (note_id,)
        )
        if not rows:
            raise NoteNotFound(f"no note #{note_id} (see `looptui memory`)")
        return note_from_row(rows[0])

    async def memory(
        self,
        loop: str | None = None,
        run: str | None = None,
        statuses: Iterable[NoteStatus] | None = None,
        kinds: Iterable[NoteKind] | None = None,
        limit: int = 10_000,
    ) -> list[Note]:
        """Notes by loop, run, status and kind, newest first."""
        where, params = [], []
        for column, value in (("loop", loop), ("run_id", run)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if statuses is None:
            where.append("status != 'dismissed'")
        for column, values in (("status", statuses), ("kind", kinds)):
            if values is not None:
                chosen = [str(value) for value in values]
                where.append(f"{column} IN ({', '.join('?' for _ in chosen)})")
                params.extend(chosen)
        sql = "SELECT * FROM notes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._fetchall(f"{sql} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [note_from_row(row) for row in rows]

    async def propose_lesson(self, note: Note) -> tuple[int, bool]:
        """Store a distilled lesson, or, when the loop has one on the same subject (`key`),
        count this run's evidence into it. Returns (its id, whether it is new)."""
        assert note.key is not None
        rows = await self._fetchall(
            "SELECT * FROM notes WHERE loop = ? AND key = ?", (note.loop, note.key)
        )
        if not rows:
            return await self.add_note(note), True
        known = note_from_row(rows[0])
        if known.status is NoteStatus.DISMISSED:
            return known.id or 0, False  # the human deleted it: never proposed again
        if note.status is NoteStatus.ACCEPTED and known.status is NoteStatus.PROPOSED:
            # the loop now keeps its lessons at once (`lessons = "auto"`): so this one too
            await self._write(
                "UPDATE notes SET status = ? WHERE id = ?", (NoteStatus.ACCEPTED.value, known.id)
            )
        if any(source.run_id == note.run_id for source in known.sources):
            return known.id or 0, False  # this run's evidence is in it already
        await self._write(
            "UPDATE notes SET seen = seen + 1, sources = ? WHERE id = ?",
            (self._sources_text([*known.sources, *note.sources]), known.id),
        )
        return known.id or 0, False

    async def set_note_status(self, note_id: int, status: NoteStatus) -> Note:
        await self.note(note_id)
        await self._write("UPDATE notes SET status = ? WHERE id = ?", (status.value, note_id))
        return await self.note(note_id)

    async def edit_note(self, note_id: int, text: str) -> Note:
        """The human's edit: the text changes, and its sources say the human wrote it."""
        if not text.strip():
            raise LooptuiError("a note cannot be empty (delete it instead)")
        if len(text.strip()) > MAX_NOTE_CHARS:
            raise LooptuiError(
                f"a note holds at most {MAX_NOTE_CHARS:,} characters (this one has "
                f"{len(text.strip()):,}): a longer one would never fit in a prompt"
            )
        note = await self.note(note_id)
        sources = [s for s in note.sources if s.kind != "human"]  # one: the last edit's
        sources.append(Source("human", detail="edited by the human"))
        await self._write(
            "UPDATE notes SET text = ?, edited_at = ?, sources = ? WHERE id = ?",
            (self.redactor.text(text.strip()), time.time(), self._sources_text(sources), note_id),
        )
        return await self.note(note_id)

    async def delete_note(self, note_id: int) -> Note:
        """Delete a note: gone from every prompt, list and search. A lesson leaves its
        subject behind (dismissed, with no text), so later runs do not propose it again."""
        note = await self.note(note_id)
        if note.key is not None:
            await self._write(
                "UPDATE notes SET status = ?, text = '' WHERE id = ?",
                (NoteStatus.DISMISSED.value, note_id),
            )
        else:
            await self._write("DELETE FROM notes WHERE id = ?", (note_id,))
        return note

    async def note_used(self, note_ids: Iterable[int]) -> None:
        """These notes reached a prompt of a later run."""
        ids = list(note_ids)
        if ids:
            marks = ", ".join("?" for _ in ids)
            await self._write(f"UPDATE notes SET uses = uses + 1 WHERE id IN ({marks})", ids)
