"""`f` on the grid: search every run's stored output, tool calls, checks, verdicts and notes;
enter on a hit opens its run."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from looptui.console import snippet_text
from looptui.engine import LooptuiError
from looptui.engine.models import local_clock
from looptui.engine.store.search import SearchHit
from looptui.tui.app import LooptuiApp
from looptui.tui.widgets.footer import KeysFooter

TYPING_PAUSE = 0.25  # seconds of no typing before the words typed so far are searched
HITS = 100
MIN_MATCH = 20  # columns of a hit's match at the least (the table scrolls sideways then)
CELL_PADDING = 2  # a DataTable cell's padding, left and right


class SearchScreen(Screen[None]):
    """A query, and the best hits across every run, best first."""

    DEFAULT_CSS = """
    SearchScreen #search-title { height: 1; padding: 0 1; background: $panel; }
    SearchScreen #query { margin: 0 1; }
    SearchScreen #search-status { height: 1; padding: 0 2; color: $text-muted; }
    SearchScreen #hits { height: 1fr; border: none; padding: 0 1; }
    """
    AUTO_FOCUS = "#query"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open run", tooltip="Open the run of the highlighted hit"),
        Binding("slash", "edit_query", "Edit query", show=False),
    ]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self._initial = query
        self.hits: list[SearchHit] = []

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(
            f"[b]looptui[/]  {self.looptui.repository_name}  ·  search across runs",
            id="search-title",
        )
        yield Input(
            self._initial,
            placeholder='words to find (all of them), "a phrase", or a prefix*',
            id="query",
        )
        yield Static("Type some words; enter shows the hits.", id="search-status")
        table: DataTable[Text] = DataTable(id="hits", cursor_type="row", zebra_stripes=False)
        table.add_columns("run", "time", "where", "kind", "match")
        yield table
        yield KeysFooter()

    def on_mount(self) -> None:
        if self._initial.strip():
            self.search(self._initial)

    @on(Input.Changed, "#query")
    def query_changed(self, event: Input.Changed) -> None:
        self.search(event.value, TYPING_PAUSE)

    @on(Input.Submitted, "#query")
    def query_submitted(self, event: Input.Submitted) -> None:
        self.search(event.value, focus=True)

    @work(group="search", exclusive=True, exit_on_error=False)
    async def search(self, query: str, pause: float = 0.0, focus: bool = False) -> None:
        """Show the hits of `query`; a newer query cancels this one (exclusive), and while
        typing the search waits for a pause."""
        status = self.query_one("#search-status", Static)
        hits_list: DataTable[Text] = self.query_one("#hits", DataTable)
        if not query.strip():
            self.hits = []
            hits_list.clear()
            status.update("Type some words; enter shows the hits.")
            return
        if pause:
            await asyncio.sleep(pause)  # the next keystroke's search cancels this one
        try:
            hits = await self.looptui.engine.history.search(query, limit=HITS)
        except LooptuiError as exc:
            self.hits = []
            hits_list.clear()
            status.update(f"[$warning]{escape(str(exc))}[/]")
            return
        self.hits = hits
        now = self.looptui.clock()
        hits_list.clear()
        rows = [_cells(hit, now) for hit in hits]
        # the match fills what the other columns leave: cut, never wrapped or scrolled to
        used = sum(max(row[column].cell_len for row in rows) for column in range(4))
        room = max(MIN_MATCH, self.size.width - used - CELL_PADDING * 5 - 3)
        for n, row in enumerate(rows):
            row[4].truncate(room, overflow="ellipsis")
            hits_list.add_row(*row, key=str(n))
        self.refresh_bindings()
        if not hits:
            status.update(escape(f"No match for {query!r}."))
            return
        more = " (the best ones)" if len(hits) == HITS else ""
        status.update(f"{len(hits)} hits{more} · enter opens the run")
        hits_list.move_cursor(row=0, animate=False)
        if focus:
            hits_list.focus()

    def selected(self) -> SearchHit | None:
        table: DataTable[Text] = self.query_one("#hits", DataTable)
        index = table.cursor_row
        return self.hits[index] if 0 <= index < len(self.hits) and table.row_count else None

    @on(DataTable.RowSelected, "#hits")
    def action_open(self) -> None:
        hit = self.selected()
        if hit is not None:
            self.looptui.open_run(hit.run_id)

    def action_edit_query(self) -> None:
        self.query_one("#query", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open":
            # on the query, enter searches (the input's own binding comes first)
            return self.selected() is not None
        return True


def _cells(hit: SearchHit, now: float) -> tuple[Text, ...]:
    return (
        Text(hit.run_id, style="bold"),
        Text(local_clock(hit.ts, now)),
        Text(f"{hit.loop} #{hit.iteration}", style="dim"),
        Text(kind_words(hit.kind), style="italic"),
        snippet_text(hit, "bold reverse"),
    )


# what a kind of event or note is called where a person reads it
KIND_WORDS = {"text": "said", "agent_finished": "agent's end", "gate": "clean checkout"}


def kind_words(kind: str) -> str:
    """An event's or note's kind in words: "tool_call" is "tool call", "text" is "said"."""
    return KIND_WORDS.get(kind, kind.replace("_", " "))
