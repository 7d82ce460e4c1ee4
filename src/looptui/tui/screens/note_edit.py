"""Edit a note's text: ctrl+s saves it (its sources then say you wrote it), escape drops
the edit."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static, TextArea

from looptui.engine.models import Note
from looptui.tui.screens.dialog import Dialog


class NoteEditScreen(Dialog[str | None]):
    """Dismisses with the note's new text (stripped), or None when cancelled."""

    DEFAULT_CSS = """
    NoteEditScreen #about { color: $text-muted; margin-bottom: 1; }
    NoteEditScreen TextArea { height: 12; }
    NoteEditScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    NoteEditScreen Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, note: Note) -> None:
        super().__init__()
        self.note = note

    def compose(self) -> ComposeResult:
        note = self.note
        with Vertical(classes="dialog-box") as box:
            box.border_title = f"Edit note #{note.id} · {note.kind.value} · {note.status.value}"
            yield Static(
                f"of run {note.run_id}; later runs of {note.loop or 'its loop'} read it as "
                "you leave it (once accepted)",
                id="about",
            )
            yield TextArea(note.text, id="note-text", soft_wrap=True)
            with Horizontal():
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text.strip()
        if not text:
            self.notify("a note cannot be empty (delete it instead)", severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
