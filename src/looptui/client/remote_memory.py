"""The memory's half of `RemoteSupervisor`: list a loop's or a run's notes, accept, edit and
delete them, each one typed command to the service, which owns the store they live in."""

from __future__ import annotations

from looptui.client.remote_calls import RemoteCalls
from looptui.engine.models import Note
from looptui.protocol.commands import (
    AcceptNote,
    DeleteNote,
    EditNote,
    GetNote,
    ListMemory,
)


class RemoteMemory(RemoteCalls):
    """`Supervisor`'s memory calls over the socket (mixed into `RemoteSupervisor`)."""

    async def memory(self, loop: str | None = None, run: str | None = None) -> list[Note]:
        return await self.call(ListMemory(loop, run), list[Note])

    async def note(self, note_id: int) -> Note:
        return await self.call(GetNote(note_id), Note)

    async def accept_note(self, note_id: int) -> Note:
        return await self.call(AcceptNote(note_id), Note)

    async def edit_note(self, note_id: int, text: str) -> Note:
        return await self.call(EditNote(note_id, text), Note)

    async def delete_note(self, note_id: int) -> Note:
        return await self.call(DeleteNote(note_id), Note)


__all__ = ["RemoteMemory"]
