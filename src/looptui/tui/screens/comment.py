"""Write feedback for the agent on a hunk or a file; ctrl+s sends it, escape drops it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static, TextArea

from looptui.tui.screens.dialog import Dialog


class CommentScreen(Dialog[str | None]):
    """Dismisses with the comment's text, or None."""

    DEFAULT_CSS = """
    CommentScreen #about { color: $text-muted; margin-bottom: 1; }
    CommentScreen TextArea { height: 8; }
    CommentScreen #limit { color: $warning; }
    CommentScreen #hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send to the agent", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, about: str, limit: str = "") -> None:
        """`limit`: what sending does to the run's iterations ("iteration 4 of up to 6"),
        said before it is sent."""
        super().__init__()
        self.about = about
        self.limit = limit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = "Feedback for the agent"
            yield Static(self.about, id="about")
            yield TextArea(id="comment")
            yield Static(self.limit or "ctrl+s sends it and starts a new iteration", id="limit")
            yield Static("ctrl+s sends it · esc cancels", id="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_send(self) -> None:
        text = self.query_one(TextArea).text.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
