"""The memory in the TUI: a run's Memory tab and a loop's memory screen, where a proposed
lesson is accepted, a note edited or deleted (after a confirmation), and its sources shown;
each change checked in the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static, TextArea

from looptui.engine.models import NoteKind, NoteStatus
from looptui.engine.store.memory import NoteNotFound
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.confirm import ConfirmScreen
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.help import HelpScreen
from looptui.tui.screens.loops import LoopsScreen
from looptui.tui.screens.memory import MemoryScreen
from looptui.tui.screens.note_edit import NoteEditScreen
from looptui.tui.screens.note_sources import NoteSourcesScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.card_grid import CardGrid
from looptui.tui.widgets.memory_list import MemoryList
from tui_support import demo_repository, open_app, plain, until, wait_for_runs

pytestmark = pytest.mark.timeout(180)


async def memory_tab(app: LooptuiApp, pilot, loop: str) -> MemoryList:  # type: ignore[no-untyped-def]
    """A finished run of `loop`, its screen open on the Memory tab, its notes shown."""
    run = await app.engine.start_run(loop)
    await wait_for_runs(app, pilot, [run.id])
    app.screen.query_one(CardGrid).select(run.id)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, RunScreen))
    await pilot.press("4")
    memory = app.screen.query_one(MemoryList)
    await until(pilot, lambda: len(memory.notes) > 0 and memory.has_focus)
    return memory


def keys_shown(app: LooptuiApp) -> dict[str, str]:
    """Each key the footer offers now, with its description."""
    return {
        key: active.binding.description
        for key, active in app.screen.active_bindings.items()
        if active.binding.show
    }


async def test_a_proposed_lesson_is_accepted_from_the_run_memory_tab(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        memory = await memory_tab(app, pilot, "fix-mean")
        lesson = memory.notes[0]  # newest first: what the run's end distilled
        assert lesson.kind is NoteKind.LESSON and lesson.status is NoteStatus.PROPOSED
        assert memory.selected == lesson
        assert "◆ proposed" in plain(memory.get_option_at_index(0).prompt)
        shown = keys_shown(app)
        assert shown["a"] == "Accept" and shown["s"] == "Sources" and shown["e"] == "Edit"
        await pilot.press("a")
        await until(pilot, lambda: memory.notes[0].status is NoteStatus.ACCEPTED)
        stored = await app.engine.note(lesson.id or 0)
        assert stored.status is NoteStatus.ACCEPTED  # the store says so, not only the screen
        assert "✔ accepted" in plain(memory.get_option_at_index(0).prompt)
        assert app.screen.active_bindings["a"].enabled is False  # nothing left to accept
        await pilot.press("question_mark")  # `?` lists the memory's keys too
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert isinstance(app.screen, HelpScreen)
        listed = list(app.screen.keys())  # (keys, description): a list, not a mapping
        assert ("s", "Where the selected note came from") in listed
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press("1")  # on the Log tab the letters are the run's again
        await until(pilot, lambda: "a" not in keys_shown(app))
        assert keys_shown(app)["e"] == "Expand tools"


async def test_a_note_is_edited_in_a_dialog_and_cancelling_keeps_it(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        memory = await memory_tab(app, pilot, "fix-mean")
        note = memory.notes[1]
        await pilot.press("down", "e")
        await until(pilot, lambda: isinstance(app.screen, NoteEditScreen))
        area = app.screen.query_one(TextArea)
        assert area.text == note.text
        area.text = "Throwaway words."
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, NoteEditScreen))
        assert (await app.engine.note(note.id or 0)).text == note.text

        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, NoteEditScreen))
        app.screen.query_one(TextArea).text = "  mean() of nothing raises ValueError.\n"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: memory.notes[1].edited_at is not None)
        stored = await app.engine.note(note.id or 0)
        assert stored.text == "mean() of nothing raises ValueError."
        assert stored.sources[-1].kind == "human"
        assert memory.selected == stored  # the cursor stayed on the note
        assert "edited by you" in plain(memory.get_option_at_index(1).prompt)


async def test_delete_asks_first_and_then_the_note_is_gone(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        memory = await memory_tab(app, pilot, "fix-mean")
        note = memory.notes[0]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert (await app.engine.note(note.id or 0)).id == note.id  # still there
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: note.id not in [n.id for n in memory.notes])
        with pytest.raises(NoteNotFound):
            await app.engine.note(note.id or 0)
        assert len(memory.notes) == 2 and memory.selected == memory.notes[0]


async def test_the_sources_are_one_key_away(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        memory = await memory_tab(app, pilot, "fix-mean")
        lesson = memory.notes[0]
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, NoteSourcesScreen))
        shown = plain(app.screen.query_one("#sources", Static).content)
        for source in lesson.sources:
            assert source.kind in shown and (source.run_id or "") in shown
        assert any(s.kind == "check" for s in lesson.sources)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press("enter")  # enter too
        await until(pilot, lambda: isinstance(app.screen, NoteSourcesScreen))
        assert app.screen.note == lesson


async def test_a_loops_memory_from_the_grid_the_loops_view_and_the_palette(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        first = await app.engine.start_run("speedup")
        await wait_for_runs(app, pilot, [first.id])
        notes = await app.engine.memory("speedup")  # newest first
        lessons = [n for n in notes if n.kind is NoteKind.LESSON]
        kept = [n for n in notes if n.kind is not NoteKind.LESSON]
        assert lessons and all(n.status is NoteStatus.PROPOSED for n in lessons)
        await app.engine.accept_note(kept[-1].id or 0)  # the oldest checkpoint, accepted
        app.screen.query_one(CardGrid).select(first.id)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MemoryScreen))
        screen = app.screen
        assert isinstance(screen, MemoryScreen) and screen.loop == "speedup"
        memory = screen.query_one(MemoryList)
        await until(pilot, lambda: len(memory.notes) == len(lessons) + 1)
        # the proposals first, then what was accepted; the other checkpoints on request
        assert [n.id for n in memory.notes] == [*(n.id for n in lessons), kept[-1].id]
        await pilot.press("t")
        await until(pilot, lambda: len(memory.notes) == len(notes))
        assert memory.notes[len(lessons)].status is NoteStatus.ACCEPTED
        assert all(n.status is NoteStatus.KEPT for n in memory.notes[len(lessons) + 1 :])
        assert memory.selected == lessons[0]
        await pilot.press("a")  # accept the newest lesson: it moves among the accepted
        await until(pilot, lambda: memory.notes[len(lessons) - 1].status is NoteStatus.ACCEPTED)
        assert (await app.engine.note(lessons[0].id or 0)).status is NoteStatus.ACCEPTED
        accepted = [n.id for n in memory.notes if n.status is NoteStatus.ACCEPTED]
        assert accepted == [lessons[0].id, kept[-1].id]  # newest first
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, GridScreen))

        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, LoopsScreen))
        loops = app.screen
        assert isinstance(loops, LoopsScreen)
        await until(pilot, lambda: loops.selected() is not None)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MemoryScreen))
        assert isinstance(app.screen, MemoryScreen)
        assert app.screen.loop == loops.selected()[0]  # type: ignore[index]
        await pilot.press("escape", "escape")
        await until(pilot, lambda: isinstance(app.screen, GridScreen))

        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {f"Memory of {loop}" for loop in config.loops} <= set(commands)
        assert "Memory" in commands  # the selected card's loop, as `m`
        commands["Memory of docs"].callback()
        await until(pilot, lambda: isinstance(app.screen, MemoryScreen))
        assert isinstance(app.screen, MemoryScreen) and app.screen.loop == "docs"


async def test_a_lesson_accepted_in_the_tui_reaches_the_next_runs_prompt(tmp_path: Path) -> None:
    """As a new user would: a demo run fails first, its lesson is proposed; accepted on the
    Memory tab, it is in the prompt of the loop's next run, and only then."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        memory = await memory_tab(app, pilot, "fix-mean")
        lesson = memory.notes[0]
        assert lesson.kind is NoteKind.LESSON and lesson.status is NoteStatus.PROPOSED
        before = await app.engine.start_run("fix-mean")  # proposed: not in the prompt
        await wait_for_runs(app, pilot, [before.id])
        (first,) = (await app.engine.history.iterations(before.id))[:1]
        assert lesson.text not in first.prompt
        await pilot.press("a")
        await until(pilot, lambda: memory.notes[0].status is NoteStatus.ACCEPTED)
        after = await app.engine.start_run("fix-mean")
        await wait_for_runs(app, pilot, [after.id])
        (first,) = (await app.engine.history.iterations(after.id))[:1]
        assert "## What earlier runs of this loop learned" in first.prompt
        assert f"(note #{lesson.id}, from run {lesson.run_id}" in first.prompt
        assert lesson.text.splitlines()[0] in first.prompt
