"""The footer of every looptui screen: `?` (every key) and `q` (quit) first, so that no
width of terminal hides them; the other keys follow in the screen's order, as many as fit
whole (a key is left out, never cut in the middle of its name)."""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, TextArea
from textual.widgets._footer import FooterKey

# The keys that must never fall off the right edge: with them, every other key is one away.
PINNED_ACTIONS = ("help", "app.help", "quit", "app.quit")  # the app's, a dialog's
PALETTE_ROOM = 13  # cells the palette's key takes at the right end, its edge included


class KeysFooter(Footer):
    """Textual's footer, its keys reordered: the pinned ones lead, then the rest; keys a
    focused text box would take as typing are left out, and so are those past the width."""

    _width = 0  # the terminal's width the keys were last fitted to

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        # in a text box a letter or `?` is typed, not a key for the app: not offered then
        typing = isinstance(self.screen.focused, Input | TextArea)
        first: dict[str, tuple[Binding, bool, str]] = {}  # action: its first binding shown
        rank: dict[str, tuple[int, int]] = {}  # action: where in the footer
        # the focused widget's keys, then the screen's in the order it declares them (Textual
        # puts some ahead, such as a priority binding), then the app's: a narrow footer
        # keeps the first ones
        declared = {b.action: n for n, b in enumerate(Binding.make_bindings(self.screen.BINDINGS))}
        for node, binding, enabled, tooltip in active.values():
            typed = typing and not binding.priority and _printable(binding.key)
            if binding.show and not typed and binding.action not in first:
                first[binding.action] = (binding, enabled, tooltip)
                if node is self.screen:
                    rank[binding.action] = (1, declared.get(binding.action, len(declared)))
                else:
                    rank[binding.action] = (2 if node is self.app else 0, len(rank))
        pinned = [first[action] for action in PINNED_ACTIONS if action in first]
        rest = [shown for action, shown in first.items() if action not in PINNED_ACTIONS]
        rest.sort(key=lambda shown: rank[shown[0].action])
        self._width = self.app.size.width
        room = self._width - PALETTE_ROOM
        padding = 1 if self.compact else 3  # around the key and after its description
        for index, (binding, enabled, tooltip) in enumerate(pinned + rest):
            key_display = self.app.get_key_display(binding)
            room -= cell_len(key_display) + cell_len(binding.description) + padding
            if room < 0 and index >= len(pinned):
                break  # this key and the rest are one `?` away
            yield FooterKey(
                binding.key,
                key_display,
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            _, binding, enabled, tooltip = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, event: events.Resize) -> None:
        if self.app.size.width != self._width:  # fit the keys to the new width
            self.call_after_refresh(self.recompose)


def _printable(key: str) -> bool:
    """A key that types a character (`q`, `?`), not one that only moves or commands."""
    return len(key) == 1 or key in ("question_mark", "slash", "space")
