"""The look shared by looptui's dialogs: a box in the middle of a dimmed screen."""

from __future__ import annotations

from typing import Any, TypeVar

from textual import events, on
from textual.binding import Binding
from textual.screen import ModalScreen

from looptui.tui.widgets.footer import KeysFooter

Result = TypeVar("Result")

# A modal screen hides the app's keys: these two are every dialog's, unless it binds the key
# itself (help closes on `?` and `q`, the quit dialog quits on `q`).
APP_KEYS = (
    Binding("question_mark", "app.help", "Keys", tooltip="Every key of this screen"),
    Binding("q", "app.quit", "Quit", tooltip="Quit (asks first while runs go)"),
)


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        own = list(cls.__dict__.get("BINDINGS", []))
        bound = {
            key.strip()
            for binding in own
            if isinstance(binding, Binding)
            for key in binding.key.split(",")
        }
        cls.BINDINGS = [*own, *(binding for binding in APP_KEYS if binding.key not in bound)]
        super().__init_subclass__(**kwargs)

    @on(events.Mount)
    async def _add_footer(self) -> None:
        await self.mount(KeysFooter())
