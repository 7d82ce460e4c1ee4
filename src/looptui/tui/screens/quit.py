"""Quitting while runs go: with the service they go on (the default), or stop them first."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from looptui.tui.screens.dialog import Dialog

QuitChoice = Literal["leave", "stop", "stay"]


class QuitScreen(Dialog[QuitChoice]):
    """Quit and leave the runs going (`q` or enter), stop them and quit (`s`), or stay."""

    DEFAULT_CSS = """
    QuitScreen > .dialog-box { width: 72; max-width: 95%; padding: 1 2; border: thick $primary; }
    QuitScreen #question { margin-bottom: 1; }
    QuitScreen Horizontal { height: auto; align-horizontal: right; }
    QuitScreen Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,y", "choose('leave')", "Quit, runs go on"),
        Binding("s", "choose('stop')", "Stop and quit"),
        Binding("n,escape", "choose('stay')", "Stay"),
    ]

    def __init__(self, active: int) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        one = self.active == 1
        runs = f"{self.active} run{' is' if one else 's are'}"
        they, them = ("It goes", "it") if one else ("They go", "them")
        with Vertical(classes="dialog-box"):
            yield Static(
                f"{runs} still going. {they} on in the looptui service after you quit; "
                f"open looptui again to follow {them}.",
                id="question",
            )
            with Horizontal():
                yield Button("Quit (q)", variant="primary", id="leave")
                yield Button(f"Stop {them} and quit (s)", variant="warning", id="stop")
                yield Button("Stay (n)", id="stay")

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "stay")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice if choice in ("leave", "stop") else "stay")  # type: ignore[arg-type]
