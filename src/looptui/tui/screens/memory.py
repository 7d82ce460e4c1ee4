"""A loop's memory: what its runs proposed and what you accepted, first; the rest of its
notes (each iteration's checkpoint) on request. The keys of the list accept, edit and delete
a note and show its sources.

Reached from the loops view and the grid (`m`) and from the command palette.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static

from looptui.engine import LooptuiError
from looptui.engine.models import Note, NoteKind, NoteStatus
from looptui.tui.app import LooptuiApp
from looptui.tui.widgets.footer import KeysFooter
from looptui.tui.widgets.memory_list import MemoryList

RANK = {NoteStatus.PROPOSED: 0, NoteStatus.ACCEPTED: 1, NoteStatus.KEPT: 2}


def remembered(note: Note) -> bool:
    """A lesson, or a note accepted for later runs: what is shown without `t`."""
    return note.kind is NoteKind.LESSON or note.status is NoteStatus.ACCEPTED


def ordered(notes: list[Note], show_all: bool) -> list[Note]:
    """Proposals first (they wait for you), then accepted notes, then the rest; newest first
    within each."""
    chosen = notes if show_all else [note for note in notes if remembered(note)]
    return sorted(chosen, key=lambda note: (RANK[note.status], -(note.id or 0)))


class MemoryScreen(Screen[None]):
    """One loop's notes."""

    CSS_PATH = "memory.tcss"
    AUTO_FOCUS = "#memory-notes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding(
            "t",
            "toggle_all",
            "All notes",
            tooltip="Show every note (each checkpoint too), or only lessons and accepted ones",
        ),
    ]

    show_all: reactive[bool] = reactive(False, init=False)

    def __init__(self, loop: str) -> None:
        super().__init__(id="memory")
        self.loop = loop
        self.notes: list[Note] = []
        self._progress: dict[str, tuple[str, int]] = {}  # run id: (status, iteration) last seen

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="memory-title")
        yield MemoryList(
            f"No lessons or accepted notes of {self.loop} yet. Press [b]t[/] for all its notes.",
            id="memory-notes",
        )
        yield KeysFooter()

    def on_mount(self) -> None:
        self.update_title()

    def on_screen_resume(self) -> None:
        """Shown (first, or again after a dialog or a run's screen): the notes as they are."""
        self.reload()

    @work(group="memory-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            notes = await self.looptui.engine.memory(loop=self.loop)
        except LooptuiError as exc:
            self.notify(str(exc), title="cannot read the memory", severity="error")
            notes = []
        if notes != self.notes or not self.query_one(MemoryList).notes:
            self.notes = notes
            self.show()

    def show(self) -> None:
        self.query_one(MemoryList).show(ordered(self.notes, self.show_all))
        self.update_title()

    def update_title(self) -> None:
        count = {status: 0 for status in NoteStatus}
        for note in self.notes:
            count[note.status] += 1
        parts = [
            f"[b]Memory[/] of [b]{escape(self.loop)}[/]",
            f"[$warning]{count[NoteStatus.PROPOSED]} proposed[/]",
            f"{count[NoteStatus.ACCEPTED]} accepted",
            f"{count[NoteStatus.KEPT]} kept",
            "all notes shown" if self.show_all else "[b]t[/] shows all",
        ]
        if self.looptui.trouble:
            parts.append(self.looptui.connection_line)
        self.query_one("#memory-title", Static).update("  ·  ".join(parts))

    def watch_show_all(self) -> None:
        self.show()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all

    @on(MemoryList.Changed)
    def note_changed(self) -> None:
        """Accepted, edited or deleted: order and count again, from the store."""
        self.reload()

    @on(LooptuiApp.RunsChanged)
    def runs_changed(self, message: LooptuiApp.RunsChanged) -> None:
        """A run of this loop finished an iteration or ended: it may have left a note or
        proposed a lesson (its output lines leave none, and ask nothing of the store)."""
        board = self.looptui.board.summaries
        moved = False
        for run_id in message.run_ids:
            summary = board.get(run_id)
            if summary is None or summary.run.loop != self.loop:
                continue
            progress = (summary.status.value, summary.iteration)
            moved |= self._progress.get(run_id) != progress
            self._progress[run_id] = progress
        if moved:
            self.reload()

    @on(LooptuiApp.ConnectionChanged)
    def connection_changed(self) -> None:
        self.update_title()
