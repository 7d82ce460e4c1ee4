"""The grid: a card per run, live, with filter, grouping and keyboard navigation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ItemGrid, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from looptui.tui.board import RunSummary
from looptui.tui.widgets.run_card import RunCard

if TYPE_CHECKING:
    from looptui.tui.app import LooptuiApp

REFRESH_INTERVAL = 0.25  # cards repaint at most 4 times a second, however fast runs stream
GROUPINGS = ("none", "loop", "status")
CARD_MIN_WIDTH = 40


def group_key(summary: RunSummary, grouping: str) -> str:
    if grouping == "loop":
        return summary.run.loop
    if grouping == "status":
        return summary.status.value
    return ""


class GridScreen(Screen[None]):
    """Every run of the repository at a glance."""

    CSS_PATH = "grid.tcss"
    AUTO_FOCUS = "RunCard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", tooltip="Open the run: log, diff, verdicts, memory"),
        Binding("n", "new_run", "New run", tooltip="Start a run of a loop"),
        Binding("s", "stop", "Stop", tooltip="Stop the run (its worktree is kept)"),
        Binding("R", "retry", "Retry", tooltip="Start a fresh run of the same loop and prompt"),
        Binding("slash", "filter", "Filter", tooltip="Show only runs matching some words"),
        Binding("g", "group", "Group", tooltip="Group cards by loop, by status, or not"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("left,h", "move('left')", "Left", show=False),
        Binding("right,l", "move('right')", "Right", show=False),
        Binding("up,k", "move('up')", "Up", show=False),
        Binding("down,j", "move('down')", "Down", show=False),
    ]

    grouping: reactive[str] = reactive("none", init=False)
    filter_text: reactive[str] = reactive("", init=False)

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(id="grid")
        self.clock = clock
        self.cards: dict[str, RunCard] = {}
        self._placed: dict[str, tuple[str, bool]] = {}  # run id: (group, shown)

    @property
    def looptui(self) -> LooptuiApp:
        from looptui.tui.app import LooptuiApp

        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Input(
            placeholder="filter: words of the loop, agent, status, id or prompt",
            id="filter",
            disabled=True,  # out of the focus chain until `/` shows it
        )
        yield VerticalScroll(id="cards")
        yield Static("No runs yet. Press [b]n[/] to start one.", id="empty")
        yield Footer()

    async def on_mount(self) -> None:
        await self.rebuild()
        self.set_interval(REFRESH_INTERVAL, self.refresh_cards, name="card refresh")
        self.set_interval(1.0, self.tick_clocks, name="elapsed clocks")

    # -- building and refreshing ---------------------------------------------------------------

    def shown_runs(self) -> list[RunSummary]:
        return [s for s in self.looptui.board.ordered() if s.matches(self.filter_text)]

    async def rebuild(self) -> None:
        """Lay the cards out again (filter, grouping or the set of runs changed)."""
        focused = self.focused.summary.id if isinstance(self.focused, RunCard) else None
        container = self.query_one("#cards", VerticalScroll)
        await container.remove_children()
        board = self.looptui.board
        self._placed = {
            s.id: (group_key(s, self.grouping), s.matches(self.filter_text))
            for s in board.summaries.values()
        }
        groups: dict[str, list[RunSummary]] = {}
        for summary in self.shown_runs():
            groups.setdefault(group_key(summary, self.grouping), []).append(summary)
        self.cards = {}
        widgets: list[Static | ItemGrid] = []
        for title, members in sorted(groups.items()):
            cards = [RunCard(summary, self.clock) for summary in members]
            self.cards.update((card.summary.id, card) for card in cards)
            if title:
                widgets.append(Static(f"{title} ({len(members)})", classes="group-title"))
            widgets.append(ItemGrid(*cards, min_column_width=CARD_MIN_WIDTH, classes="cards"))
        await container.mount_all(widgets)
        self.query_one("#empty").display = not self.cards
        self.update_title()
        if focused in self.cards:
            self.cards[focused].focus(scroll_visible=False)
        elif self.cards and not isinstance(self.focused, Input):
            next(iter(self.ordered_cards())).focus()

    async def refresh_cards(self) -> None:
        """Repaint the cards whose runs changed since the last refresh; re-lay out if needed."""
        board = self.looptui.board
        dirty = board.take_dirty()
        if not dirty:
            return
        placement = {
            run_id: (
                group_key(board.summaries[run_id], self.grouping),
                board.summaries[run_id].matches(self.filter_text),
            )
            for run_id in dirty
        }
        if any(self._placed.get(run_id) != place for run_id, place in placement.items()):
            await self.rebuild()
            return
        for run_id in dirty:
            card = self.cards.get(run_id)
            if card is not None:
                card.update_summary(board.summaries[run_id])
        self.update_title()

    def tick_clocks(self) -> None:
        for card in self.cards.values():
            if card.summary.status.is_active:
                card.refresh()

    def update_title(self) -> None:
        board = self.looptui.board
        total, waiting = len(board.summaries), len(board.needing_you())
        active = sum(s.status.is_active for s in board.summaries.values())
        shown = f"{len(self.cards)} of {total} runs" if self.filter_text else f"{total} runs"
        parts = [f"[b]looptui[/]  {self.looptui.repository_name}", shown, f"{active} active"]
        if waiting:
            parts.append(f"[b $needs-review]{waiting} need you[/] (press [b]r[/])")
        if self.grouping != "none":
            parts.append(f"grouped by {self.grouping}")
        self.query_one("#title", Static).update("  ·  ".join(parts))

    async def watch_grouping(self) -> None:
        await self.rebuild()

    async def watch_filter_text(self) -> None:
        await self.rebuild()

    # -- actions -------------------------------------------------------------------------------

    def ordered_cards(self) -> list[RunCard]:
        return list(self.query(RunCard))

    def selected(self) -> RunSummary | None:
        return self.focused.summary if isinstance(self.focused, RunCard) else None

    def action_move(self, direction: str) -> None:
        cards = self.ordered_cards()
        if not cards:
            return
        current = self.focused if isinstance(self.focused, RunCard) else None
        if current is None:
            cards[0].focus()
            return
        index = cards.index(current)
        if direction in ("left", "right"):
            step = -1 if direction == "left" else 1
            cards[max(0, min(len(cards) - 1, index + step))].focus()
            return
        here = _position(current)
        if direction == "up":
            candidates = [card for card in cards if _position(card)[1] < here[1]]
            row = max((_position(card)[1] for card in candidates), default=None)
        else:
            candidates = [card for card in cards if _position(card)[1] > here[1]]
            row = min((_position(card)[1] for card in candidates), default=None)
        in_row = [card for card in candidates if _position(card)[1] == row]
        if in_row:
            min(in_row, key=lambda card: abs(_position(card)[0] - here[0])).focus()

    def action_open(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.looptui.open_run(summary.id)

    def action_new_run(self) -> None:
        self.looptui.action_new_run()

    async def action_stop(self) -> None:
        summary = self.selected()
        if summary is not None:
            await self.looptui.stop_run(summary.id)

    async def action_retry(self) -> None:
        summary = self.selected()
        if summary is not None:
            await self.looptui.start_run(summary.run.loop, summary.run.prompt, summary.run.agent)

    def action_filter(self) -> None:
        search = self.query_one("#filter", Input)
        search.disabled = False
        search.add_class("-shown")
        search.focus()

    def action_clear_filter(self) -> None:
        search = self.query_one("#filter", Input)
        search.value = ""
        self._hide_filter()
        self.filter_text = ""

    def _hide_filter(self) -> None:
        search = self.query_one("#filter", Input)
        search.remove_class("-shown")
        search.disabled = True

    def action_group(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        summary = self.selected()
        if action == "stop":
            return summary is not None and summary.status.is_active
        if action in ("open", "retry"):
            return summary is not None
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter").has_class("-shown")
        return True

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        """Enter: back to the cards; the filter stays shown while it holds words."""
        if not self.filter_text.strip():
            self._hide_filter()
        cards = self.ordered_cards()
        if cards:
            cards[0].focus()

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()


def _position(card: RunCard) -> tuple[int, int]:
    """The card's place in the scrolled content (its grid's offset plus its own)."""
    grid = card.parent
    assert isinstance(grid, ItemGrid)
    return (card.virtual_region.x, grid.virtual_region.y + card.virtual_region.y)
