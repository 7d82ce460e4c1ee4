"""A run's log: the stored history, then live lines, written in batches a few times a second."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.console import Console
from rich.segment import Segment
from rich.style import Style, StyleType
from rich.text import Text
from textual import work
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import RichLog

from looptui.console import render_event
from looptui.protocol.events import Event

KEPT_EVENTS = 5000  # what a re-render (expanding tool calls) can show again
FLUSH_INTERVAL = 0.05
FIRST_PAINT = 200  # stored events shown at once when a run opens; older ones follow
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
        self._generation = 0  # counts re-renders, so that a late older part is dropped
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
        if not self.lines and len(pending) > FIRST_PAINT:
            self._write_newest_first(pending)
        else:
            self._write(pending)

    def watch_expanded(self) -> None:
        """Render everything again with tool calls expanded or compact."""
        self.clear()
        self._generation += 1
        self._write_newest_first(list(self.events))

    def _write(self, events: Iterable[Event]) -> None:
        """One write for the whole batch: RichLog lays out, trims and scrolls once per write."""
        palette = self._palette()
        text = _joined(events, palette, self.expanded)
        if text is not None:
            self.write(text)

    def _write_newest_first(self, events: list[Event]) -> None:
        """Thousands of stored lines take rich a second or more to lay out: the newest
        screenfuls are written at once, the older lines are laid out in a thread and put
        above them when they are ready."""
        older, newest = events[:-FIRST_PAINT], events[-FIRST_PAINT:]
        self._write(newest)
        if older:
            self._lay_out_older(older, self._palette(), self.expanded, self._generation)

    @work(thread=True, group="log-history", exit_on_error=False)
    def _lay_out_older(
        self,
        events: list[Event],
        palette: dict[str, StyleType],
        expanded: bool,
        generation: int,
    ) -> None:
        text = _joined(events, palette, expanded)
        if text is None:
            return
        parts = text.split("\n")
        width = max(self.min_width, *(part.cell_len for part in parts))
        # a console of its own: the app's is not the thread's to use
        console = Console(
            width=width,
            color_system=self.app.console.color_system,  # type: ignore[arg-type]
            force_terminal=True,
            legacy_windows=False,
        )
        options = console.options.update(overflow="ignore", no_wrap=True, width=width)
        strips = Strip.from_lines(list(Segment.split_lines(console.render(text, options))))
        for strip in strips:
            strip.adjust_cell_length(width)
        self.app.call_from_thread(self._put_above, strips, width, generation)

    def _put_above(self, strips: list[Strip], width: int, generation: int) -> None:
        if generation != self._generation:  # the log was rendered again meanwhile
            return
        if not self._size_known or self._deferred_renders:  # the newest lines go in first
            self.set_timer(0.02, lambda: self._put_above(strips, width, generation))
            return
        at_end = self.is_vertical_scroll_end
        self.lines[:0] = strips
        if self.max_lines is not None and len(self.lines) > self.max_lines:
            del self.lines[: len(self.lines) - self.max_lines]
        # RichLog's own bookkeeping, as `write` keeps it
        self._line_cache.clear()
        self._widest_line_width = max(self._widest_line_width, width)
        self.virtual_size = Size(self._widest_line_width, len(self.lines))
        if at_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:  # the reader scrolled up: keep the same lines in view
            self.scroll_to(y=self.scroll_y + len(strips), animate=False, immediate=True)
        self.refresh()

    def _palette(self) -> dict[str, StyleType]:
        palette: dict[str, StyleType] = {}
        for role in PALETTE_ROLES:
            style = self.get_component_rich_style(f"run-log--{role}", partial=True)
            palette[role] = style if style else Style()
        return palette


def _joined(events: Iterable[Event], palette: dict[str, StyleType], expanded: bool) -> Text | None:
    lines = [render_event(event, palette=palette, expanded=expanded) for event in events]
    shown = [line for line in lines if line is not None]
    return Text("\n").join(shown) if shown else None
