"""The grid of run cards as one widget that draws only the cards on screen.

Hundreds of runs would be hundreds of widgets to mount, style and lay out; here a card is a
few cached lines of text, drawn again only when its run changed, its clock ticked, the
cursor moved onto or off it, or the theme changed. The cursor is an index, moved with the
arrow keys by the screen; the grid scrolls to keep it in view.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from looptui.tui import format
from looptui.tui.board import RunSummary
from looptui.tui.widgets.run_card import draw_card

CARD_HEIGHT = 6  # four lines inside a border
GUTTER = 1
CARDS_PER_FRAME = 6  # most changed cards drawn in one frame (each costs about a millisecond)
MIN_CARD_WIDTH = 40
# what the arrows do on the grid, for `?` (the screen's hjkl say the same)
MOVE_LEFT = "The card before (the row above's last, at a row's start)"
MOVE_RIGHT = "The card after (the next row's first, at a row's end)"
MOVE_UP = "The card above"
MOVE_DOWN = "The card below"


@dataclass(frozen=True)
class _Row:
    """A band of the grid: a group's title, or a row of cards (indexes into the runs)."""

    y: int
    height: int
    title: str = ""
    cards: tuple[int, ...] = ()
    members: tuple[int, ...] = ()  # a title's: its group's runs, whose cost it totals


class CardGrid(ScrollView, can_focus=True):
    """Cards of runs in rows, optionally under group titles; `cursor` is the selected card."""

    # the arrows move the cursor, not the view (ScrollView's own would scroll): `?` says so
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move('left')", "Left", tooltip=MOVE_LEFT, show=False),
        Binding("right", "move('right')", "Right", tooltip=MOVE_RIGHT, show=False),
    ]

    DEFAULT_CSS = """
    CardGrid {
        padding: 0 1;
        background: $background;
        .card-grid--card { background: $surface; color: $text; }
        .card-grid--cursor { background: $boost; }
        .card-grid--border { color: $panel-lighten-2; }
        .card-grid--border-cursor { color: $primary; }
        .card-grid--muted { color: $text-muted; }
        .card-grid--active { color: $run-active; }
        .card-grid--review { color: $needs-review; }
        .card-grid--pass { color: $verdict-pass; }
        .card-grid--fail { color: $verdict-fail; }
        .card-grid--unknown { color: $verdict-unknown; }
        .card-grid--add { color: $diff-add-text; }
        .card-grid--remove { color: $diff-remove-text; }
        .card-grid--group { color: $text-muted; text-style: bold; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "card-grid--card",
        "card-grid--cursor",
        "card-grid--border",
        "card-grid--border-cursor",
        "card-grid--muted",
        "card-grid--active",
        "card-grid--review",
        "card-grid--pass",
        "card-grid--fail",
        "card-grid--unknown",
        "card-grid--add",
        "card-grid--remove",
        "card-grid--group",
    }

    class CursorMoved(Message):
        """The selected run changed (None: nothing to select)."""

        def __init__(self, run_id: str | None) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(
        self,
        clock: Callable[[], float],
        id: str | None = None,
        loop_limit: Callable[[str], int | None] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.clock = clock
        # a loop's max_iterations: what a card's limit shows feedback added to
        self.loop_limit = loop_limit or (lambda loop: None)
        self.runs: list[RunSummary] = []
        self.groups: list[tuple[str, list[int]]] = []
        self.cursor = 0
        self._rows: list[_Row] = []
        self._row_starts: list[int] = []
        self._columns = 1
        self._card_width = MIN_CARD_WIDTH
        self._cards: dict[tuple[str, int, bool], list[Strip]] = {}  # (run, width, cursor)
        self._versions: dict[str, tuple[object, ...]] = {}
        self._colours: tuple[Style, ...] = ()
        self._stale: dict[str, None] = {}  # runs whose cards wait to be drawn, in order
        self._drawing = False

    # -- what is shown -------------------------------------------------------------------------

    @property
    def selected(self) -> RunSummary | None:
        return self.runs[self.cursor] if self.runs else None

    def show(self, groups: Sequence[tuple[str, list[RunSummary]]]) -> None:
        """Show these runs, grouped (a group titled "" has no title); the cursor stays on its
        run if that run is still shown, and its card where it was on screen (a run that moved
        to another group moves the cards around it, not the one the user looks at)."""
        previous = self.selected.id if self.selected else None
        anchor = self._row_on_screen(self.cursor) if previous is not None else None
        self.runs = []
        self.groups = []
        for title, members in groups:
            first = len(self.runs)
            self.runs += members
            self.groups.append((title, list(range(first, len(self.runs)))))
        ids = [summary.id for summary in self.runs]
        self.cursor = ids.index(previous) if previous in ids else 0
        self._cards.clear()
        self._lay_out()
        if anchor is not None and previous in ids:  # now: a frame would show the card moved
            top = self._card_region(self.cursor, titled=False).y - anchor
            self.scroll_to(y=top, animate=False, force=True, immediate=True)
            # but not over its group's title, should it head a group now
            region = self._card_region(self.cursor)
            self.scroll_to_region(region, animate=False, force=True, immediate=True)
        if self.runs:  # newer runs come first: keep the selected card in view
            # the card selected by then (`n` and `R` select the new run right after this)
            self.call_after_refresh(self._keep_cursor_in_view)
        self.post_message(self.CursorMoved(self.selected.id if self.selected else None))

    def _row_on_screen(self, index: int) -> int | None:
        """How far below the top of the view the card's first line is (None: not in view)."""
        if not self._rows or index >= len(self.runs):
            return None
        region = self._card_region(index, titled=False)
        row = region.y - self.scroll_offset.y
        fits = 0 <= row <= self.scrollable_content_region.height - region.height
        return row if fits else None

    def refresh_runs(self, run_ids: set[str] | None = None) -> None:
        """Draw again the cards of these runs (all, by default). A burst of changed cards
        is drawn over the next frames, CARDS_PER_FRAME of those on screen in each, so that
        the frame a key press asks for never waits on a whole grid's drawing; cards off
        screen are drawn when they scroll into view."""
        if run_ids is None:
            self._cards.clear()
            self._stale.clear()
            self.refresh()
            return
        self._stale.update(dict.fromkeys(run_ids))
        self._draw_some()
        self._refresh_titles(run_ids)

    def _refresh_titles(self, run_ids: set[str]) -> None:
        """Repaint the titles of the groups of these runs (each totals its group's cost)."""
        top = self.scroll_offset.y
        for row in self._rows:
            if row.title and any(self.runs[index].id in run_ids for index in row.members):
                self.refresh(Region(0, row.y + 1 - top, self.size.width, 1))

    def _draw_some(self) -> None:
        self._drawing = False
        budget = CARDS_PER_FRAME
        for index in self._on_screen():
            run_id = self.runs[index].id
            if run_id in self._stale:
                self._redraw(index)
                budget -= 1
                if not budget:
                    break
        if budget or not self._stale:  # every card on screen is drawn: the rest can wait
            for run_id in self._stale:
                self._forget(run_id)
            self._stale.clear()
        elif not self._drawing:
            self._drawing = True
            self.call_after_refresh(self._draw_some)

    def _redraw(self, index: int) -> None:
        """Draw this card again now, and repaint in the next frame only the lines of it that
        changed (under a flood of output, the one with the run's newest line)."""
        summary = self.runs[index]
        self._stale.pop(summary.id, None)
        cursor = index == self.cursor and self.has_focus
        key = (summary.id, self._card_width, cursor)
        before = self._cards.get(key)
        self._forget(summary.id)
        self._versions[summary.id] = self._version(summary)
        lines = self._cards[key] = self._draw(summary, cursor)
        region = self._card_region(index, titled=False).translate(-self.scroll_offset)
        if before is None or len(before) != len(lines):
            self.refresh(region)
            return
        for offset, (old, new) in enumerate(zip(before, lines, strict=True)):
            if old != new:
                self.refresh(Region(region.x, region.y + offset, region.width, 1))

    def _forget(self, run_id: str) -> None:
        for key in [key for key in self._cards if key[0] == run_id]:
            del self._cards[key]

    def _on_screen(self) -> list[int]:
        """The cards in view, top to bottom."""
        top = self.scroll_offset.y
        bottom = top + self.scrollable_content_region.height
        first = max(0, bisect.bisect_right(self._row_starts, top) - 1)
        last = bisect.bisect_left(self._row_starts, bottom)
        return [index for row in self._rows[first:last] for index in row.cards]

    def select(self, run_id: str) -> None:
        for index, summary in enumerate(self.runs):
            if summary.id == run_id:
                self._move_to(index)
                return

    def move(self, direction: str) -> None:
        """Move the cursor left, right, up or down (a row, or a screenful: page_up,
        page_down), across group boundaries too, or to the first or last card."""
        if not self.runs:
            return
        if direction in ("first", "last"):
            self._move_to(0 if direction == "first" else len(self.runs) - 1)
            return
        if direction in ("left", "right"):
            step = -1 if direction == "left" else 1
            self._move_to(max(0, min(len(self.runs) - 1, self.cursor + step)))
            return
        row_index, column = self._place(self.cursor)
        rows = [i for i, row in enumerate(self._rows) if row.cards]
        step = 1
        if direction.startswith("page_"):  # the rows of cards in view, less one kept in sight
            step = max(1, len({self._place(index)[0] for index in self._on_screen()}) - 1)
        up = direction in ("up", "page_up")
        position = rows.index(row_index) + (-step if up else step)
        if direction.startswith("page_"):  # as far as there are rows
            position = max(0, min(len(rows) - 1, position))
        if 0 <= position < len(rows):
            cards = self._rows[rows[position]].cards
            self._move_to(cards[min(column, len(cards) - 1)])

    def action_move(self, direction: str) -> None:
        self.move(direction)

    def _move_to(self, index: int) -> None:
        """Select this card and scroll it into view whole (it may be selected already, but
        out of view: a run the app selects)."""
        if index != self.cursor:
            old = self.cursor
            self.cursor = index
            for moved in (old, index):  # now, whatever else waits to be drawn
                if moved < len(self.runs):
                    self._redraw(moved)
            self.post_message(self.CursorMoved(self.runs[index].id))
        self._keep_cursor_in_view()

    def _keep_cursor_in_view(self) -> None:
        """Scroll so that the selected card, and its group's title above a group's first
        row, are in view whole."""
        if self.runs and self._rows:
            self.scroll_to_region(self._card_region(self.cursor), animate=False, force=True)

    # -- layout --------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._lay_out()

    def watch_show_vertical_scrollbar(self) -> None:
        """The scrollbar came or went, which is no resize: the width the cards were laid out
        for changed all the same (a terminal shrunk to 80x24 grows one, and cards drawn
        before it were cut at their right edge)."""
        self.call_after_refresh(self._lay_out)

    def _lay_out(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        self._columns = max(1, (width + GUTTER) // (MIN_CARD_WIDTH + GUTTER))
        self._card_width = max(10, (width - GUTTER * (self._columns - 1)) // self._columns)
        rows: list[_Row] = []
        y = 0
        for title, members in self.groups:
            if title:
                rows.append(_Row(y, 2, title=f"{title} ({len(members)})", members=tuple(members)))
                y += 2
            for start in range(0, len(members), self._columns):
                rows.append(
                    _Row(y, CARD_HEIGHT, cards=tuple(members[start : start + self._columns]))
                )
                y += CARD_HEIGHT
        self._rows = rows
        self._row_starts = [row.y for row in rows]
        self._cards.clear()
        self._stale.clear()
        self.virtual_size = Size(width, y)
        self.refresh()

    def _place(self, index: int) -> tuple[int, int]:
        for row_index, row in enumerate(self._rows):
            if index in row.cards:
                return row_index, row.cards.index(index)
        return 0, 0

    def _card_region(self, index: int, titled: bool = True) -> Region:
        """Where the card is in the grid (with its group's title above it, if `titled` and
        it is the group's first row)."""
        row_index, column = self._place(index)
        row = self._rows[row_index]
        above = titled and row_index > 0 and bool(self._rows[row_index - 1].title)
        top = row.y - (2 if above else 0)
        x = column * (self._card_width + GUTTER)
        return Region(x, top, self._card_width, row.y + CARD_HEIGHT - top)

    def card_at(self, x: int, y: int) -> int | None:
        """The card under a point of the content (for the mouse)."""
        position = bisect.bisect_right(self._row_starts, y) - 1
        if position < 0:
            return None
        row = self._rows[position]
        column = x // (self._card_width + GUTTER)
        return row.cards[column] if column < len(row.cards) else None

    def on_click(self, event: object) -> None:
        from textual.events import Click

        assert isinstance(event, Click)
        scroll_x, scroll_y = self.scroll_offset
        index = self.card_at(event.x - 1 + scroll_x, event.y + scroll_y)
        if index is not None:
            self._move_to(index)

    # -- drawing -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """Styles are updated often (a toast coming or going restyles the screen); drawn
        cards are thrown away only when the colours they were drawn with changed. Textual
        restyles the component classes (the colours) only after this is called, so they are
        compared once it has (else a theme change would leave cards in the old colours)."""
        super().notify_style_update()
        self.call_next(self._check_colours)

    def _check_colours(self) -> None:
        try:
            colours = tuple(
                self.get_component_rich_style(name, partial=True)
                for name in sorted(self.COMPONENT_CLASSES)
            )
        except KeyError:  # not styled yet
            colours = ()
        if colours != self._colours:
            self._colours = colours
            self._cards.clear()
            self._stale.clear()
            self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_y = self.scroll_offset.y
        width = self.scrollable_content_region.width
        line = y + scroll_y
        position = bisect.bisect_right(self._row_starts, line) - 1
        base = self.rich_style
        if position < 0 or not self._rows:
            return Strip.blank(width, base)
        row = self._rows[position]
        offset = line - row.y
        if offset >= row.height:
            return Strip.blank(width, base)
        if row.title:
            if not offset:  # a blank line above each group's title
                return Strip.blank(width, base)
            style = self.get_component_rich_style("card-grid--group")
            spent = format.cost_of(self.runs[index].run for index in row.members)
            title = f"{row.title}  ·  {spent}" if spent else row.title
            return Strip([Segment(title, base + style)]).adjust_cell_length(width, base)
        segments: list[Segment] = []
        gutter = Segment(" " * GUTTER, base)
        for column, index in enumerate(row.cards):
            if column:
                segments.append(gutter)
            segments += list(self._card_lines(index)[offset])
        return Strip(segments).adjust_cell_length(width, base)

    def _card_lines(self, index: int) -> list[Strip]:
        summary = self.runs[index]
        cursor = index == self.cursor and self.has_focus
        key = (summary.id, self._card_width, cursor)
        version = self._version(summary)
        if self._versions.get(summary.id) != version:
            self._versions[summary.id] = version
            for stale in [k for k in self._cards if k[0] == summary.id]:
                del self._cards[stale]
        lines = self._cards.get(key)
        if lines is None:
            lines = self._draw(summary, cursor)
            self._cards[key] = lines
        return lines

    def _version(self, summary: RunSummary) -> tuple[object, ...]:
        elapsed = int(summary.elapsed(self.clock())) if summary.status.is_active else 0
        return (summary.run, summary.iteration, summary.last_line, summary.verdict, elapsed)

    def on_focus(self) -> None:
        self.refresh_runs({self.selected.id} if self.selected else set())

    def on_blur(self) -> None:
        self.on_focus()

    def _draw(self, summary: RunSummary, cursor: bool) -> list[Strip]:
        return draw_card(
            summary,
            width=self._card_width,
            cursor=cursor,
            now=self.clock(),
            limit=self.loop_limit(summary.run.loop),
            style=self.get_component_rich_style,
            console=self.app.console,
        )
