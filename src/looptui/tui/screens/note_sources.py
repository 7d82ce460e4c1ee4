"""Where a note came from: its text and each of its sources (the run, the iteration, and
the evidence it quotes: a check's failure, a verdict, a tamper flag, a rejected hunk, your
own edit)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from looptui.engine.models import Note
from looptui.tui.screens.dialog import Dialog


class NoteSourcesScreen(Dialog[None]):
    """A note's provenance, read-only."""

    DEFAULT_CSS = """
    NoteSourcesScreen > .dialog-box { width: 110; }
    NoteSourcesScreen #note-text { margin-bottom: 1; }
    NoteSourcesScreen #no-sources { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,s,enter,q", "dismiss", "Close"),
    ]

    def __init__(self, note: Note) -> None:
        super().__init__()
        self.note = note

    def compose(self) -> ComposeResult:
        note = self.note
        with VerticalScroll(classes="dialog-box") as box:
            box.border_title = (
                f"Sources of note #{note.id} · {note.kind.value} · {note.status.value}"
            )
            yield Static(Text(note.text.strip()), id="note-text")
            if not note.sources:
                yield Static("No sources recorded.", id="no-sources")
                return
            table = Table(box=None, padding=(0, 1), expand=True, show_edge=False)
            table.add_column("source", style="bold", no_wrap=True)
            table.add_column("run", no_wrap=True)
            table.add_column("iteration", justify="right", no_wrap=True)
            table.add_column("evidence", ratio=1)
            for source in note.sources:
                table.add_row(
                    source.kind,
                    source.run_id or "",
                    str(source.iteration) if source.iteration else "",
                    Text(source.detail),
                )
            yield Static(table, id="sources")
