"""Managing the memory, as the engine offers it to the CLI, the TUI and the service: list a
loop's or a run's notes, accept a proposed lesson, edit or delete any note.

The human decides what later runs see: a proposal reaches no prompt until accepted, an edit
is marked as the human's, and a deletion is gone from the prompts and from search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from looptui.engine.errors import LooptuiError
from looptui.engine.models import Note, NoteStatus

if TYPE_CHECKING:
    from looptui.engine.config import Config
    from looptui.engine.store import Store


class MemoryControl:
    """The engine's half that manages its memory (see `Engine`)."""

    config: Config | None
    store: Store

    async def memory(self, loop: str | None = None, run: str | None = None) -> list[Note]:
        """The notes of a loop or of a run (a run id or its unique prefix), newest first."""
        run_id = (await self.store.find_run(run)).id if run is not None else None
        if loop is not None and run_id is None:
            known = set(self.config.loops) if self.config else set()
            if loop not in known and not await self.store.memory(loop=loop, limit=1):
                names = ", ".join(sorted(known)) or "none"
                raise LooptuiError(f"no loop {loop!r} has memory (loops: {names})")
        return await self.store.memory(loop=loop, run=run_id)

    async def note(self, note_id: int) -> Note:
        """The note with this id (NoteNotFound when none has it)."""
        return await self.store.note(note_id)

    async def accept_note(self, note_id: int) -> Note:
        """Let a note reach later runs of its loop (a proposed lesson, or any note)."""
        return await self.store.set_note_status(note_id, NoteStatus.ACCEPTED)

    async def edit_note(self, note_id: int, text: str) -> Note:
        return await self.store.edit_note(note_id, text)

    async def delete_note(self, note_id: int) -> Note:
        return await self.store.delete_note(note_id)
