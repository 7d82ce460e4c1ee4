"""The look shared by looptui's dialogs: a box in the middle of a dimmed screen."""

from __future__ import annotations

from typing import TypeVar

from textual import events, on
from textual.screen import ModalScreen
from textual.widgets import Footer

Result = TypeVar("Result")


class Dialog(ModalScreen[Result]):
    """A modal screen whose box is its child with the class `dialog-box`, with a footer of
    the keys that apply in it."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
    }
    Dialog > .dialog-box {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    @on(events.Mount)
    async def _add_footer(self) -> None:
        await self.mount(Footer())
