"""Notes of the memory as a list, with the keys that manage them: accept, edit, delete, and
the sources of the selected note one key away.

The same list serves a run's Memory tab and a loop's memory screen, so it carries its own
keys and does what they say through the supervisor (a worker each), as a screen would; it
updates the note in place and posts `MemoryList.Changed` up for a parent that orders or
counts the notes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, Literal

from textual import on, work
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from looptui.engine import LooptuiError
from looptui.engine.models import Note, NoteStatus, local_clock
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.confirm import ConfirmScreen
from looptui.tui.screens.note_edit import NoteEditScreen
from looptui.tui.screens.note_sources import NoteSourcesScreen

Change = Literal["accepted", "edited", "deleted"]
STATUS_LOOK = {
    NoteStatus.PROPOSED: ("◆ proposed", "$warning bold"),
    NoteStatus.ACCEPTED: ("✔ accepted", "$success"),
    NoteStatus.KEPT: ("· kept", "$text-muted"),
    NoteStatus.DISMISSED: ("✗ deleted", "$text-muted"),
}


def note_prompt(note: Note, now: float) -> Content:
    """How a note reads in the list: its status (a proposal stands out), kind, id, where it
    came from, how much it was used, its text, and how many sources it has."""
    label, look = STATUS_LOOK[note.status]
    where = f"run {note.run_id}" + (f" · iteration {note.iteration}" if note.iteration else "")
    facts = [where]
    if note.seen > 1:
        facts.append(f"seen in {note.seen} runs")
    facts.append(f"{note.uses} use{'s' if note.uses != 1 else ''}")
    facts.append(local_clock(note.created_at, now))
    if note.edited_at:
        facts.append("edited by you")
    count = len(note.sources)
    sources = f"{count} source{'s' if count != 1 else ''} (s)" if count else "no sources"
    return Content.assemble(
        (label, look),
        "  ",
        (note.kind.value, "$secondary bold"),
        (f"  #{note.id}  ", "bold"),
        (" · ".join(facts), "$text-muted"),
        "\n",
        note.text.strip(),
        "\n",
        (sources, "$text-muted"),
    )


class MemoryList(OptionList):
    """Notes, one option each; `show` sets them (the order is the parent's)."""

    DEFAULT_CSS = """
    MemoryList {
        height: 1fr;
        border: none;
        padding: 0 1;
        &:focus { border: none; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "Accept", tooltip="Accept the note: later runs of its loop get it"),
        Binding("e", "edit", "Edit", tooltip="Edit the note's text"),
        Binding("d", "delete", "Delete", tooltip="Delete the note (asks first)"),
        Binding("s", "sources", "Sources", tooltip="Where the selected note came from"),
    ]

    @dataclass
    class Changed(Message):
        """A note was accepted, edited or deleted here (`note` as it is now, or was)."""

        note: Note
        change: Change

    def __init__(self, empty: str = "No notes yet.", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.notes: list[Note] = []
        self.empty = empty

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    def _now(self) -> float:
        return self.looptui.clock() if isinstance(self.app, LooptuiApp) else time.time()

    def show(self, notes: list[Note]) -> None:
        """Show `notes`, keeping the selection on the note it was on."""
        kept = self.selected.id if self.selected is not None else None
        self.notes = list(notes)
        self._render_options()
        ids = [note.id for note in self.notes]
        if self.notes:
            self.highlighted = ids.index(kept) if kept in ids else 0
        self.refresh_bindings()

    def _render_options(self) -> None:
        self.clear_options()
        if not self.notes:
            empty = Content.from_markup(self.empty).stylize("$text-muted")
            self.add_option(Option(empty, disabled=True))
            return
        now = self._now()
        options: list[Option | None] = []
        for index, note in enumerate(self.notes):
            if index:
                options.append(None)  # a rule between notes
            options.append(Option(note_prompt(note, now), id=f"note-{note.id}"))
        self.add_options(options)

    @property
    def selected(self) -> Note | None:
        """The note under the cursor."""
        option = self.highlighted_option
        if option is None or option.id is None:
            return None
        return next((n for n in self.notes if f"note-{n.id}" == option.id), None)

    @on(OptionList.OptionHighlighted)
    def _moved(self) -> None:
        self.refresh_bindings()  # Accept applies to a note not accepted yet

    # -- the keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "accept":
            note = self.selected
            return (note is not None and note.status is not NoteStatus.ACCEPTED) or None
        # shown, and taken, even with nothing selected: on a run's screen the same letters
        # mean stop and expand, which must not happen to a key meant for a note
        return True

    def action_accept(self) -> None:
        note = self.selected
        if note is not None and note.status is not NoteStatus.ACCEPTED:
            self.accept(note)

    def action_edit(self) -> None:
        note = self.selected
        if note is None:
            self.app.bell()
            return

        def edited(text: str | None) -> None:
            if text is not None and text != note.text.strip():
                self.edit(note, text)

        self.app.push_screen(NoteEditScreen(note), edited)

    def action_delete(self) -> None:
        note = self.selected
        if note is None:
            self.app.bell()
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete(note)

        question = (
            f"Delete note #{note.id} ({note.kind.value}, {note.status.value})? Later runs "
            "will not see it and search will not find it."
        )
        self.app.push_screen(ConfirmScreen(question, "Delete"), confirmed)

    def action_sources(self) -> None:
        note = self.selected
        if note is None:
            self.app.bell()
            return
        self.app.push_screen(NoteSourcesScreen(note))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        """Enter on a note: its sources, as `s`."""
        event.stop()
        self.action_sources()

    # -- what the keys do, through the supervisor ----------------------------------------------

    @work(group="memory-change", exit_on_error=False)
    async def accept(self, note: Note) -> None:
        try:
            now = await self.looptui.engine.accept_note(note.id or 0)
        except LooptuiError as exc:
            self.notify(str(exc), title="not accepted", severity="error")
            return
        self._replace(now)
        self.notify(f"note #{now.id}: later runs of {now.loop} get it", title="accepted")
        self.post_message(self.Changed(now, "accepted"))

    @work(group="memory-change", exit_on_error=False)
    async def edit(self, note: Note, text: str) -> None:
        try:
            now = await self.looptui.engine.edit_note(note.id or 0, text)
        except LooptuiError as exc:
            self.notify(str(exc), title="not edited", severity="error")
            return
        self._replace(now)
        self.notify(f"note #{now.id}", title="edited")
        self.post_message(self.Changed(now, "edited"))

    @work(group="memory-change", exit_on_error=False)
    async def delete(self, note: Note) -> None:
        try:
            gone = await self.looptui.engine.delete_note(note.id or 0)
        except LooptuiError as exc:
            self.notify(str(exc), title="not deleted", severity="error")
            return
        index = self.highlighted
        self.show([n for n in self.notes if n.id != gone.id])
        if self.notes and index is not None:  # the cursor stays where the note was
            self.highlighted = min(index, len(self.notes) - 1)
        self.notify(f"note #{gone.id}", title="deleted")
        self.post_message(self.Changed(gone, "deleted"))

    def _replace(self, note: Note) -> None:
        self.show([note if n.id == note.id else n for n in self.notes])
