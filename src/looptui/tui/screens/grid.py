"""The grid: a card per run, live, with filter, grouping and keyboard navigation."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Input, Static

from looptui.engine.models import Run, RunStatus
from looptui.tui import format
from looptui.tui.app import LooptuiApp
from looptui.tui.board import RunSummary
from looptui.tui.widgets.card_grid import MOVE_DOWN, MOVE_LEFT, MOVE_RIGHT, MOVE_UP, CardGrid
from looptui.tui.widgets.footer import KeysFooter
from looptui.tui.worktree import WORKTREE_BINDINGS, WorktreeScreen, discard
from looptui.words import counted

GROUPINGS = ("none", "loop", "status")


# statuses in the order of a run's life (queued, running, succeeded... merged, discarded)
LIFECYCLE = {status.value: place for place, status in enumerate(RunStatus)}


def group_key(summary: RunSummary, grouping: str) -> str:
    if grouping == "loop":
        return summary.run.loop
    if grouping == "status":
        return summary.status.value
    return ""


def group_order(grouping: str) -> Callable[[tuple[str, list[RunSummary]]], tuple[int, str]]:
    """How groups follow each other: loops by name, statuses as a run lives through them."""

    def key(group: tuple[str, list[RunSummary]]) -> tuple[int, str]:
        name = group[0]
        return (LIFECYCLE.get(name, 0) if grouping == "status" else 0, name)

    return key


PAGE_MOVES = ("first", "last", "page_up", "page_down")  # keys the filter's input has too


class GridScreen(WorktreeScreen):
    """Every run of the repository at a glance."""

    CSS_PATH = "grid.tcss"
    AUTO_FOCUS = "#cards"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", tooltip="Open the run: log, diff, verdicts, memory"),
        Binding("n", "new_run", "New run", tooltip="Start a run of a loop"),
        Binding("s", "stop", "Stop", tooltip="Stop the run (its worktree is kept)"),
        Binding("R", "retry", "Retry", tooltip="Start a fresh run of the same loop and prompt"),
        # priority, and focus moved at once: keys typed in the same instant as `/` (a fast
        # typist, a paste) are already queued behind it and must land in the filter
        Binding(
            "slash", "filter", "Filter", tooltip="Show only runs matching some words", priority=True
        ),
        Binding("g", "group", "Group", tooltip="Group cards by loop, by status, or not"),
        Binding("v", "review", "Review", tooltip="Review the run's diff hunk by hunk, then merge"),
        # the app's own `r`, here before the keys a narrow footer may cut off
        Binding("r", "app.needs_you", "Needs you", tooltip="Runs waiting for your review"),
        # last in the footer: a narrow terminal cuts them off first (`?` and `q` lead it
        # whatever the width, and `?` and the palette list them)
        Binding(
            "f",
            "search",
            "Search runs",
            tooltip="Search every run's output, tools, checks, verdicts and notes",
        ),
        Binding(
            "L", "loops", "Loops", tooltip="Each loop's triggers, next fire times, last firings"
        ),
        Binding(
            "m", "memory", "Memory", tooltip="The lessons and notes of the selected run's loop"
        ),
        Binding(
            "d",
            "discard",
            "Discard",
            tooltip="Discard the run: its worktree and branch",
            show=False,
        ),
        *WORKTREE_BINDINGS,
        # shown while there is a filter: in its input, the way out of it
        Binding("escape", "clear_filter", "Clear filter"),
        # `←`/`→` are the cards' own (CardGrid), so that the filter's input keeps them
        Binding("h", "move('left')", "Left", tooltip=MOVE_LEFT, show=False),
        Binding("l", "move('right')", "Right", tooltip=MOVE_RIGHT, show=False),
        Binding("k", "move('up')", "Up", tooltip=MOVE_UP, show=False),
        Binding("j", "move('down')", "Down", tooltip=MOVE_DOWN, show=False),
        # priority: the grid would scroll on up/down by itself (moving the cursor scrolls it);
        # not j/k, which the filter's input must still receive
        Binding("up", "move('up')", "Up", tooltip=MOVE_UP, show=False, priority=True),
        Binding("down", "move('down')", "Down", tooltip=MOVE_DOWN, show=False, priority=True),
        # priority too (the grid would scroll alone), but not in the filter, which has its own
        Binding(
            "home", "move('first')", "First", tooltip="The first card", show=False, priority=True
        ),
        Binding("end", "move('last')", "Last", tooltip="The last card", show=False, priority=True),
        Binding(
            "pageup",
            "move('page_up')",
            "Page up",
            tooltip="The card a screenful up",
            show=False,
            priority=True,
        ),
        Binding(
            "pagedown",
            "move('page_down')",
            "Page down",
            tooltip="The card a screenful down",
            show=False,
            priority=True,
        ),
    ]

    grouping: reactive[str] = reactive("none", init=False)
    filter_text: reactive[str] = reactive("", init=False)

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(id="grid")
        self.clock = clock
        self._placed: dict[str, tuple[str, bool]] = {}  # run id: (group, shown)
        self._enabled: tuple[bool, ...] = ()
        self._title = ""

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    @property
    def cards(self) -> CardGrid:
        return self.query_one("#cards", CardGrid)

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        if self.looptui.demo_path is not None:  # a temporary directory, to be found again
            yield Static(f"demo repository: {self.looptui.demo_path}", id="where", markup=False)
        yield Input(
            placeholder="filter: words of the loop, agent, status, id or prompt",
            id="filter",
            disabled=True,  # out of the focus chain until `/` shows it
        )
        yield CardGrid(self.clock, id="cards", loop_limit=self.looptui.loop_limit)
        yield Static("No runs yet. Press [b]n[/] to start one.", id="empty")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.rebuild()
        # a clock, not a poll: the elapsed time of running cards moves on by itself
        self.set_interval(1.0, self.tick_clocks, name="elapsed clocks")

    # -- building and refreshing ---------------------------------------------------------------

    def shown_runs(self) -> list[RunSummary]:
        return [s for s in self.looptui.board.ordered() if s.matches(self.filter_text)]

    def rebuild(self) -> None:
        """Lay the cards out again (filter, grouping or the set of runs changed)."""
        board = self.looptui.board
        self._placed = {
            s.id: (group_key(s, self.grouping), s.matches(self.filter_text))
            for s in board.summaries.values()
        }
        groups: dict[str, list[RunSummary]] = {}
        for summary in self.shown_runs():
            groups.setdefault(group_key(summary, self.grouping), []).append(summary)
        self.cards.show(sorted(groups.items(), key=group_order(self.grouping)))
        empty = self.query_one("#empty", Static)
        empty.display = not self.cards.runs
        if self.filter_text and board.summaries:
            empty.update("No run matches the filter. Press [b]esc[/] to clear it.")
        else:
            empty.update("No runs yet. Press [b]n[/] to start one.")
        self.cards.display = bool(self.cards.runs)
        self.update_title()

    @on(LooptuiApp.RunsChanged)
    def refresh_cards(self, message: LooptuiApp.RunsChanged) -> None:
        """Repaint the cards of the runs that changed, in place; lay out again when one
        joined, left or moved between groups."""
        board = self.looptui.board
        dirty = {run_id for run_id in message.run_ids if run_id in board.summaries}
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
            self.rebuild()
        else:
            self.cards.refresh_runs(dirty)
            self.update_title()
        self._refresh_bindings_if_changed()

    @on(LooptuiApp.RunStarted)
    def focus_started(self, message: LooptuiApp.RunStarted) -> None:
        """`n` or `R` started a run: its card is selected and focused (the filter, should it
        hide the new run, is cleared)."""
        summary = self.looptui.board.summaries.get(message.run_id)
        if summary is None:
            return
        if not summary.matches(self.filter_text):
            self.query_one("#filter", Input).value = ""
            self._hide_filter()
            self.filter_text = ""  # lays the cards out again
        if message.run_id not in {s.id for s in self.cards.runs}:
            self.rebuild()
        self.cards.select(message.run_id)
        self.cards.focus()

    @on(LooptuiApp.ConnectionChanged)
    def connection_changed(self) -> None:
        self.update_title()

    def tick_clocks(self) -> None:
        self.cards.refresh_runs({s.id for s in self.cards.runs if s.status.is_active})

    def update_title(self) -> None:
        board = self.looptui.board
        total, waiting = len(board.summaries), len(board.needing_you())
        active = sum(s.status.is_active for s in board.summaries.values())
        shown = len(self.cards.runs)
        runs = counted(total, "run")
        count = f"{shown} of {runs}" if self.filter_text else runs
        parts = [f"[b]looptui[/]  {self.looptui.repository_name}", count, f"{active} active"]
        spent = format.cost_of(s.run for s in board.summaries.values())
        if spent:  # every run's, filtered out or not (grouped by loop, each loop's is shown)
            parts.append(spent)
        if waiting:
            need = "needs" if waiting == 1 else "need"
            parts.append(f"[b $needs-review]{waiting} {need} you[/] (press [b]r[/])")
        if self.grouping != "none":
            parts.append(f"grouped by {self.grouping}")
        # where the runs are driven comes last, unless live updates are in trouble
        parts.insert(1 if self.looptui.trouble else len(parts), self.looptui.connection_line)
        # whole parts on as many lines as the width needs: no layout unless that changes
        title = format.fit(parts, self.size.width - 2)
        if title != self._title:
            relayout = title.count("\n") != self._title.count("\n")
            self._title = title
            self.query_one("#title", Static).update(title, layout=relayout)

    def on_resize(self) -> None:
        self.update_title()

    def watch_grouping(self) -> None:
        self.rebuild()

    def watch_filter_text(self) -> None:
        self.rebuild()

    @on(CardGrid.CursorMoved)
    def _refresh_bindings_if_changed(self) -> None:
        """The footer shows the keys that apply to the selected run; recompute it only when
        that set changes (redrawing the footer on every move is expensive)."""
        enabled = tuple(bool(self.check_action(a, ())) for a in ("stop", "open", "retry"))
        if enabled != self._enabled:
            self._enabled = enabled
            self.refresh_bindings()

    # -- actions -------------------------------------------------------------------------------

    def selected(self) -> RunSummary | None:
        return self.cards.selected

    def run_at_hand(self) -> Run | None:
        summary = self.selected()
        return summary.run if summary is not None else None

    def action_move(self, direction: str) -> None:
        self.cards.move(direction)

    def action_open(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.looptui.open_run(summary.id)

    def action_review(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.looptui.review_run(summary.id)

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

    @work(group="grid-command", exclusive=True, exit_on_error=False)
    async def action_discard(self) -> None:
        summary = self.selected()
        if summary is not None:
            await discard(self, self.looptui.engine, summary.run)

    def action_memory(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.looptui.open_memory(summary.run.loop)

    def action_loops(self) -> None:
        self.looptui.action_loops()

    def action_search(self) -> None:
        self.looptui.action_search()

    def action_filter(self) -> None:
        search = self.query_one("#filter", Input)
        if search.has_focus:
            raise SkipAction()  # a `/` typed into the filter
        search.disabled = False
        search.add_class("-shown")
        self.set_focus(search)

    def action_clear_filter(self) -> None:
        search = self.query_one("#filter", Input)
        search.value = ""
        self._hide_filter()
        self.filter_text = ""
        self.cards.focus()

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
        if action in ("open", "retry", "memory"):
            return summary is not None
        if action == "review":  # as from the run's screen: once it has ended, while it is kept
            return (
                summary is not None
                and not summary.status.is_active
                and (summary.status.has_workspace)
            )
        if action == "discard":
            status = summary.status if summary is not None else None
            return status is not None and not status.is_active and status.has_workspace
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter").has_class("-shown")
        if action == "filter":  # in the filter, `/` is typed (and not offered)
            return not self.query_one("#filter").has_focus
        if action == "move" and parameters and str(parameters[0]) in PAGE_MOVES:
            return not self.query_one("#filter").has_focus  # home and end move in the filter
        return True

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        """Enter: back to the cards; the filter stays shown while it holds words."""
        if not self.filter_text.strip():
            self._hide_filter()
        if self.cards.runs:
            self.cards.focus()
