"""The memory's calls of `Supervisor`, the same in this process and over the service's real
socket: notes come back typed, with their sources, and errors as the same class and line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import make_repo
from looptui.client.api import Supervisor
from looptui.client.remote import RemoteSupervisor
from looptui.engine.errors import LooptuiError, RunNotFound
from looptui.engine.models import Note, NoteKind, NoteStatus, Source
from looptui.engine.store import Store
from looptui.engine.store.memory import NoteNotFound
from looptui.engine.workspace import Repository
from test_supervisor_api import AGENT, MODES, WAIT, api_config, open_mode

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {"README.md": "a repository\n", "tools/agent.py": AGENT}
    return make_repo(tmp_path / "repo", files, api_config(tmp_path / "release"))


@pytest.fixture(params=MODES)
async def supervisor(request: pytest.FixtureRequest, root: Path) -> AsyncIterator[Supervisor]:
    if request.param == "service":
        request.getfixturevalue("service")  # SIGKILLs the service when the test ends
    opened = await open_mode(request.param, root)
    try:
        yield opened
    finally:
        await opened.close()


async def from_store(root: Path, note_id: int) -> Note:
    """The note as the store itself has it, read apart from the supervisor."""
    store = await Store.open(Repository(root).store_path)
    try:
        return await store.note(note_id)
    finally:
        await store.close()


async def test_list_accept_edit_delete_round_trip(supervisor: Supervisor, root: Path) -> None:
    run = await supervisor.start_run("never")  # its check cannot pass: a lesson is proposed
    async with asyncio.timeout(WAIT):
        failed = await supervisor.wait(run.id)
    notes = await supervisor.memory("never")
    assert [n.id for n in notes] == sorted((n.id or 0 for n in notes), reverse=True)
    (lesson,) = [n for n in notes if n.kind is NoteKind.LESSON]
    assert lesson.status is NoteStatus.PROPOSED and lesson.run_id == failed.id
    assert lesson.loop == "never" and isinstance(lesson.sources[0], Source)
    assert lesson == await from_store(root, lesson.id or 0)  # every field, sources too
    assert await supervisor.memory(run=failed.id[:5]) == notes
    assert await supervisor.note(lesson.id or 0) == lesson
    assert await supervisor.memory("write") == []

    accepted = await supervisor.accept_note(lesson.id or 0)
    assert accepted.status is NoteStatus.ACCEPTED
    assert (await from_store(root, lesson.id or 0)).status is NoteStatus.ACCEPTED
    edited = await supervisor.edit_note(lesson.id or 0, "Write missing.txt, not other.txt.")
    assert edited.text == "Write missing.txt, not other.txt." and edited.edited_at
    assert edited.sources[:-1] == lesson.sources and edited.sources[-1].kind == "human"
    assert edited == await from_store(root, lesson.id or 0)
    gone = await supervisor.delete_note(lesson.id or 0)
    assert gone == edited
    assert lesson.id not in [n.id for n in await supervisor.memory("never")]

    with pytest.raises(NoteNotFound, match=rf"^no note #{lesson.id} \(see `looptui memory`\)$"):
        await supervisor.accept_note(lesson.id or 0)
    with pytest.raises(NoteNotFound):
        await supervisor.note(lesson.id or 0)
    with pytest.raises(LooptuiError, match="cannot be empty"):
        await supervisor.edit_note(notes[-1].id or 0, "   ")
    with pytest.raises(LooptuiError, match=r"no loop 'nope' has memory \(loops: chatty, "):
        await supervisor.memory("nope")
    with pytest.raises(RunNotFound):
        await supervisor.memory(run="ffffffff")
    if isinstance(supervisor, RemoteSupervisor):
        assert supervisor.state == "connected"  # errors are answers, not a dropped link
