"""A run's log: the stored history, then live lines, written in batches a few times a second."""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.style import Style, StyleType
from textual.reactive import reactive
from textual.widgets import RichLog

from looptui.console import render_event
from looptui.protocol.events import Event

KEPT_EVENTS = 5000  # what a re-render (expanding tool calls) can show again
FLUSH_INTERVAL = 0.05
PALETTE_ROLES = ("muted", "active", "pass", "fail", "warn", "tool", "text", "heading")


class RunLog(RichLog):
    """Events as lines; tool calls one line each until `expanded` shows them whole."""

    DEFAULT_CSS = """
    RunLog {
        background: $surface;
        .run-log--muted { color: $text-muted; }
        .run-log--active { color: $run-active; }
        .run-log--pass { color: $verdict-pass; }
        .run-log--fail { color: $verdict-fail; }
        .run-log--warn { color: $verdict-unknown; }
        .run-log--tool { color: $secondary; }
        .run-log--text { color: $text; text-style: italic; }
        .run-log--heading { color: $primary; text-style: bold; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"run-log--{role}" for role in PALETTE_ROLES}

    expanded: reactive[bool] = reactive(False, init=False)

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=KEPT_EVENTS * 2, wrap=False, markup=False)
        self.events: deque[Event] = deque(maxlen=KEPT_EVENTS)
        self._pending: list[Event] = []
        self.last_id = 0

    def on_mount(self) -> None:
        self.set_interval(FLUSH_INTERVAL, self.flush, name="log flush")

    def add(self, events: list[Event]) -> None:
        """Queue events (already stored ones are skipped by id); they show on the next flush."""
        fresh = [event for event in events if event.id is None or event.id > self.last_id]
        if fresh:
            self.last_id = max(self.last_id, *(event.id or 0 for event in fresh))
            self._pending += fresh

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self.events.extend(pending)
        palette = self._palette()
        for event in pending:
            line = render_event(event, palette=palette, expanded=self.expanded)
            if line is not None:
                self.write(line)

    def watch_expanded(self) -> None:
        """Render everything again with tool calls expanded or compact."""
        self.clear()
        palette = self._palette()
        for event in self.events:
            line = render_event(event, palette=palette, expanded=self.expanded)
            if line is not None:
                self.write(line)

    def _palette(self) -> dict[str, StyleType]:
        palette: dict[str, StyleType] = {}
        for role in PALETTE_ROLES:
            style = self.get_component_rich_style(f"run-log--{role}", partial=True)
            palette[role] = style if style else Style()
        return palette
