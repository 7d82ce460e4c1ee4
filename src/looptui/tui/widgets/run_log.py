"""A run's log: the stored history, then live lines, written in batches a few times a second.

Drawn line by line (Textual's Line API): an event becomes rich `Text` lines when it is laid
out, and a line becomes a `Strip` only when it is on screen. Opening a run lays out its
newest FIRST_PAINT events at once and the older ones a chunk at a time after each refresh,
so the newest lines show in the first frame however long the history.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import deque
from collections.abc import Iterable, Sequence
from typing import ClassVar, overload

from rich.style import Style, StyleType
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from looptui.console import render_event
from looptui.protocol.events import Event
from looptui.tui.widgets.log_search import Match, find, rank

KEPT_EVENTS = 5000  # what a re-render (expanding tool calls) can show again
FLUSH_INTERVAL = 0.05
FIRST_PAINT = 200  # stored events laid out at once when a run opens; older ones follow
OLDER_CHUNK = 500  # older events laid out per refresh (about 10 ms of rich Text)
PALETTE_ROLES = ("muted", "active", "pass", "fail", "warn", "tool", "text", "heading")
MATCH_MARGIN = 4  # columns kept in view left of a match the view scrolls sideways to


class RunLog(ScrollView, can_focus=True):
    """Events as lines; tool calls one line each until `expanded` shows them whole.

    Follows the newest line while scrolled to the end (Textual's anchor); scrolled up, the
    lines in view stay in view as older lines are laid out above or the oldest are dropped.
    """

    DEFAULT_CSS = """
    RunLog {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus { background-tint: $foreground 5%; }
        .run-log--muted { color: $text-muted; }
        .run-log--active { color: $run-active; }
        .run-log--pass { color: $verdict-pass; }
        .run-log--fail { color: $verdict-fail; }
        .run-log--warn { color: $verdict-unknown; }
        .run-log--tool { color: $secondary; }
        .run-log--text { color: $text; text-style: italic; }
        .run-log--heading { color: $primary; text-style: bold; }
        .run-log--match { text-style: reverse bold; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"run-log--{role}" for role in PALETTE_ROLES),
        "run-log--match",
    }

    expanded: reactive[bool] = reactive(False, init=False)
    wrap: reactive[bool] = reactive(False, init=False)  # long lines go on below, indented

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.events: deque[Event] = deque()  # the kept ones, oldest first
        self._pending: list[Event] = []
        self.last_id = 0
        # The laid-out events are always the newest len(_counts) of `events`; the older
        # ones wait for `_lay_out_older`.
        self._texts: list[Text] = []  # the laid-out events' lines, in order
        self._counts: deque[int] = deque()  # how many of those lines each event has
        self._first_line = 0  # a number for _texts[0] that no other line has had since reset
        self._widest = 0
        self._older_scheduled = False
        self._strips: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)
        self._wrapped_at = 0  # the width lines were wrapped to
        self.match: Match | None = None  # the match of the last search, highlighted

    @property
    def lines(self) -> Sequence[Strip]:
        """The laid-out lines as strips (made when asked for, not kept)."""
        return _Lines(self)

    @property
    def following(self) -> bool:
        """Whether the log keeps to its newest line (scrolled to the end, anchored)."""
        # Textual keeps the anchor's state private: released once the reader scrolls away,
        # restored when they scroll back to the end
        return self.is_anchored and not self._anchor_released

    def on_mount(self) -> None:
        self.anchor()
        self.set_interval(FLUSH_INTERVAL, self.flush, name="log flush")

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def add(self, events: list[Event]) -> None:
        """Queue events (already stored ones are skipped by id); they show on the next flush."""
        fresh = [event for event in events if event.id is None or event.id > self.last_id]
        if fresh:
            self.last_id = max(self.last_id, *(event.id or 0 for event in fresh))
            self._pending += fresh

    def flush(self) -> None:
        """Show the queued events: all at once, or the newest FIRST_PAINT into an empty log."""
        if not self._pending:
            return
        pending, self._pending = self._pending[-KEPT_EVENTS:], []
        self.events.extend(pending)
        self._append(pending[-FIRST_PAINT:] if not self._counts else pending)
        self._trim()
        self._changed()

    def watch_expanded(self) -> None:
        self._lay_out_again()

    def watch_wrap(self) -> None:
        self._lay_out_again()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if self.wrap and width != self._wrapped_at:
            self._lay_out_again()

    def _lay_out_again(self) -> None:
        """Lay everything out again (tool calls expanded or compact, lines wrapped or not),
        keeping the event at the top of the view there when the reader has scrolled up."""
        top = None if self.following else self._event_at(int(self.scroll_y))
        self.match = None  # its line is laid out anew, maybe as several
        self._texts.clear()
        self._counts.clear()
        self._strips.clear()
        self._first_line, self._widest = 0, 0
        total = len(self.events)
        start = total - FIRST_PAINT if top is None else min(top[0], total - FIRST_PAINT)
        start = max(start, 0)
        self._append(list(itertools.islice(self.events, start, total)))
        if top is not None:
            index, offset = top
            count = self._counts[index - start]
            first = sum(itertools.islice(self._counts, 0, index - start))
            y = first + min(offset, max(count - 1, 0))
            self._changed()
            self.scroll_to(y=y, animate=False, immediate=True)
        else:
            self._changed()

    # -- finding -------------------------------------------------------------------------------

    def search(self, word: str, forward: bool = True) -> Match | None:
        """Find `word` (ignoring case) after the last match, or from the top of the view when
        there is none; highlight it and scroll it into view. None: it is nowhere."""
        current = self.match
        if current is not None and 0 <= current.line - self._first_line < len(self._texts):
            line = current.line - self._first_line
            column = current.start + 1 if forward else current.start
        else:  # a first search, or its match was dropped or laid out anew
            line, column = int(self.scroll_y), 0
        found = find(_Plain(self), word, line, column, forward)
        self.match = None
        self._strips.clear()
        if found is None:
            self.refresh()
            return None
        index, start, wrapped = found
        self.match = Match(self._first_line + index, start, start + len(word), wrapped)
        self._reveal(index, start, start + len(word))
        self.refresh()
        return self.match

    def match_rank(self, word: str) -> tuple[int, int]:
        """Which match of `word` is highlighted (from 1; 0 for none), of how many the log
        holds."""
        match = self.match
        if match is None:
            return 0, rank(_Plain(self), word, 0, 0)[1]
        return rank(_Plain(self), word, match.line - self._first_line, match.start)

    def clear_search(self) -> None:
        """Take the highlight away."""
        if self.match is not None:
            self.match = None
            self._strips.clear()
            self.refresh()

    def _reveal(self, index: int, start: int, end: int) -> None:
        """Scroll so that line `index` is in view (in the middle when it was not), columns
        `start` to `end` too."""
        height = self.scrollable_content_region.height
        width = self.scrollable_content_region.width
        y = None
        if not self.scroll_y <= index < self.scroll_y + height:
            y = max(index - height // 2, 0)
        x = None
        if start < self.scroll_x or end > self.scroll_x + width:
            x = max(start - MATCH_MARGIN, 0)
        if x is not None or y is not None:
            self.scroll_to(x=x, y=y, animate=False, immediate=True)

    # -- laying out ----------------------------------------------------------------------------

    def _lay_out(self, events: Iterable[Event]) -> tuple[list[Text], list[int]]:
        palette = self._palette()
        texts: list[Text] = []
        counts: list[int] = []
        width = self.scrollable_content_region.width if self.wrap else 0
        self._wrapped_at = width
        for event in events:
            text = render_event(event, palette=palette, expanded=self.expanded)
            if text is None:
                counts.append(0)
                continue
            parts = list(text.split("\n", allow_blank=True)) if "\n" in text.plain else [text]
            lines: list[Text] = []
            for part in parts:
                if "\t" in part.plain:
                    part.expand_tabs()
                if width > 1 and part.cell_len > width:
                    lines += self._wrapped(part, width)
                else:
                    lines.append(part)
            for line in lines:
                self._widest = max(self._widest, line.cell_len)
            texts += lines
            counts.append(len(lines))
        return texts, counts

    def _wrapped(self, line: Text, width: int) -> list[Text]:
        """A line too wide for `width`, as lines that fit: the later ones indented to where
        its text begins (past its indent and its mark, "  ✎ ", "    → "), so that a wrapped
        line reads as one item."""
        console = self.app.console
        first = line.wrap(console, width, overflow="fold")[0]
        hang = min(_hang(line.plain), width // 2)
        rest = line[len(first.plain) :]
        rest = rest[len(rest.plain) - len(rest.plain.lstrip(" ")) :]
        lines = [first]
        for part in rest.wrap(console, width - hang, overflow="fold"):
            lines.append(Text(" " * hang) + part)
        return lines

    def _append(self, events: list[Event]) -> None:
        texts, counts = self._lay_out(events)
        self._texts += texts
        self._counts.extend(counts)

    def _lay_out_older(self) -> None:
        """Lay out one chunk of the older events above the lines there are, and ask for the
        next chunk after the next refresh."""
        self._older_scheduled = False
        waiting = len(self.events) - len(self._counts)
        if waiting <= 0:
            return
        start = max(waiting - OLDER_CHUNK, 0)
        texts, counts = self._lay_out(itertools.islice(self.events, start, waiting))
        self._texts[:0] = texts
        self._counts.extendleft(reversed(counts))
        self._first_line -= len(texts)
        following = self.following
        self._changed()
        if texts and not following:  # the reader scrolled up: keep the same lines in view
            self.scroll_to(y=self.scroll_y + len(texts), animate=False, immediate=True)

    def _trim(self) -> None:
        """Drop the oldest events past KEPT_EVENTS (and their lines, if laid out)."""
        excess = len(self.events) - KEPT_EVENTS
        if excess <= 0:
            return
        waiting = len(self.events) - len(self._counts)
        dropped = 0
        for _ in range(excess):
            self.events.popleft()
            if waiting:
                waiting -= 1
            else:
                dropped += self._counts.popleft()
        if dropped:
            del self._texts[:dropped]
            self._first_line += dropped
            if not self.following:
                self.scroll_to(y=max(self.scroll_y - dropped, 0), animate=False, immediate=True)

    def _changed(self) -> None:
        self.virtual_size = Size(self._widest, len(self._texts))
        self.refresh()
        if len(self._counts) < len(self.events) and not self._older_scheduled:
            self._older_scheduled = True
            self.call_after_refresh(self._lay_out_older)

    def _event_at(self, line: int) -> tuple[int, int] | None:
        """The index in `events` of the event showing `line`, and the line's place in it."""
        if not self._texts:
            return None
        ends = list(itertools.accumulate(self._counts))
        laid = bisect.bisect_right(ends, min(line, len(self._texts) - 1))
        start = ends[laid - 1] if laid else 0
        return len(self.events) - len(self._counts) + laid, line - start

    def _palette(self) -> dict[str, StyleType]:
        palette: dict[str, StyleType] = {}
        for role in PALETTE_ROLES:
            style = self.get_component_rich_style(f"run-log--{role}", partial=True)
            palette[role] = style if style else Style()
        return palette

    # -- drawing -------------------------------------------------------------------------------

    def strip(self, index: int) -> Strip:
        """Laid-out line `index` as a strip of its own width."""
        text = self._texts[index]
        match = self.match
        if match is not None and match.line == self._first_line + index:
            text = text.copy()
            style = self.get_component_rich_style("run-log--match", partial=True)
            text.stylize(style, match.start, match.end)
        return Strip(text.render(self.app.console), text.cell_len)

    def render_line(self, y: int) -> Strip:
        """Row `y` of the view: its strip made once per scroll column and width."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if not 0 <= index < len(self._texts):
            return Strip.blank(width, self.rich_style)
        key = (self._first_line + index, scroll_x, width)
        line = self._strips.get(key)
        if line is None:
            line = self.strip(index).crop_extend(scroll_x, scroll_x + width, self.rich_style)
            self._strips[key] = line
        return line.apply_style(self.rich_style)


_MARK = re.compile(r" *(?:\S{1,2} )?")


def _hang(plain: str) -> int:
    """Where a log line's text begins: after its indent and a mark of a character or two."""
    found = _MARK.match(plain)
    return found.end() if found else 0


class _Plain(Sequence[str]):
    """A log's laid-out lines as plain text, each read when it is searched."""

    def __init__(self, log: RunLog) -> None:
        self._texts = log._texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [text.plain for text in self._texts[index]]
        return self._texts[index].plain


class _Lines(Sequence[Strip]):
    """A log's laid-out lines as strips, each made when it is read."""

    def __init__(self, log: RunLog) -> None:
        self._log = log

    def __len__(self) -> int:
        return len(self._log._texts)

    @overload
    def __getitem__(self, index: int) -> Strip: ...

    @overload
    def __getitem__(self, index: slice) -> list[Strip]: ...

    def __getitem__(self, index: int | slice) -> Strip | list[Strip]:
        if isinstance(index, slice):
            return [self._log.strip(n) for n in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._log.strip(index)
