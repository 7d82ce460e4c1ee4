"""Write feedback for the agent on a hunk or a file; ctrl+s sends it, escape drops it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea


class CommentScreen(ModalScreen[str | None]):
    """Dismisses with the comment's text, or None."""

    DEFAULT_CSS = """
    CommentScreen { align: center middle; background: $background 60%; }
    CommentScreen > Vertical {
        width: 90;
        max-width: 95%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    CommentScreen #about { color: $text-muted; margin-bottom: 1; }
    CommentScreen TextArea { height: 8; }
    CommentScreen #hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send to the agent", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, about: str) -> None:
        super().__init__()
        self.about = about

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Feedback for the agent"
            yield Static(self.about, id="about")
            yield TextArea(id="comment")
            yield Static("ctrl+s sends it and starts a new iteration · esc cancels", id="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_send(self) -> None:
        text = self.query_one(TextArea).text.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
