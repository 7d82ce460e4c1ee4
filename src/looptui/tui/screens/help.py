"""`?`: every key of the screen underneath, with what it does."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from looptui.tui.screens.dialog import Dialog


class HelpScreen(Dialog[None]):
    """The keys of a screen (its own, its widgets' and the app's), read from its bindings."""

    DEFAULT_CSS = """
    HelpScreen > .dialog-box { width: 80; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.described = screen

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, description in self.keys():
            table.add_row(key, description)
        with VerticalScroll(classes="dialog-box") as scroll:
            scroll.border_title = f"Keys · {screen_name(self.described)}"
            yield Static(table)

    def keys(self) -> list[tuple[str, str]]:
        """(keys, description) for every described binding, keys of one action together:
        looptui's own first (the screen's, then the app's), then the ones Textual gives every
        app, screen and scrolling widget."""
        from looptui.tui.app import is_looptui_binding

        by_action: dict[tuple[str, str], list[str]] = {}
        own: set[tuple[str, str]] = set()
        for active in self.described.active_bindings.values():
            binding = active.binding
            if not binding.description:
                continue
            entry = (binding.action, binding.tooltip or binding.description)
            display = self.app.get_key_display(binding)
            keys = by_action.setdefault(entry, [])
            if display not in keys:
                keys.append(display)
            if is_looptui_binding(active.node, binding):
                own.add(entry)
        # a stable sort: within each part, the order the bindings were declared in
        ordered = sorted(by_action.items(), key=lambda item: item[0] not in own)
        return [(" ".join(keys), description) for (_, description), keys in ordered]


def screen_name(screen: Screen[object]) -> str:
    """A screen's name in words: NeedsYouScreen is "Needs you"."""
    words = re.findall(r"[A-Z][a-z]*", type(screen).__name__.removesuffix("Screen"))
    return " ".join([words[0], *(word.lower() for word in words[1:])]) if words else ""
