"""The footer of every looptui screen: `?` (every key) and `q` (quit) first, so that no
width of terminal hides them; the other keys follow in the screen's order, as far as they fit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, TextArea
from textual.widgets._footer import FooterKey

# The keys that must never fall off the right edge: with them, every other key is one away.
PINNED_ACTIONS = ("help", "app.help", "quit", "app.quit")  # the app's, a dialog's


class KeysFooter(Footer):
    """Textual's footer, its keys reordered: the pinned ones lead, then the rest; keys a
    focused text box would take as typing are left out."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        # in a text box a letter or `?` is typed, not a key for the app: not offered then
        typing = isinstance(self.screen.focused, Input | TextArea)
        first: dict[str, tuple[Binding, bool, str]] = {}  # action: its first binding shown
        for _, binding, enabled, tooltip in active.values():
            typed = typing and not binding.priority and _printable(binding.key)
            if binding.show and not typed and binding.action not in first:
                first[binding.action] = (binding, enabled, tooltip)
        pinned = [first[action] for action in PINNED_ACTIONS if action in first]
        rest = [shown for action, shown in first.items() if action not in PINNED_ACTIONS]
        for binding, enabled, tooltip in pinned + rest:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
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


def _printable(key: str) -> bool:
    """A key that types a character (`q`, `?`), not one that only moves or commands."""
    return len(key) == 1 or key in ("question_mark", "slash", "space")
