"""The agent screen: one run's log, diff, verdicts and memory, in tabs."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from looptui.engine import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.store.feed import Feed
from looptui.protocol.events import EventKind
from looptui.tui import format
from looptui.tui.app import LooptuiApp
from looptui.tui.widgets.diff_view import DiffView
from looptui.tui.widgets.evidence import MemoryView, VerdictsView
from looptui.tui.widgets.run_log import KEPT_EVENTS, RunLog

RELOADING_KINDS = {EventKind.COMMIT, EventKind.VERDICT, EventKind.NOTE, EventKind.STATUS}


class RunScreen(Screen[None]):
    """Everything one run did, live while it goes."""

    CSS_PATH = "run.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1", "tab('log')", "Log"),
        Binding("2", "tab('diff')", "Diff"),
        Binding("3", "tab('verdicts')", "Verdicts"),
        Binding("4", "tab('memory')", "Memory"),
        Binding("v", "review", "Review", tooltip="Review the diff hunk by hunk, then merge"),
        Binding("s", "stop", "Stop", tooltip="Stop the run (its worktree is kept)"),
        Binding("e", "expand", "Expand tools", tooltip="Show tool calls whole or as one line"),
        Binding("u", "split", "Split/unified", tooltip="Show the diff side by side or unified"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self._stale = {"diff", "verdicts", "memory"}

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="run-title")
        with TabbedContent(initial="log"):
            with TabPane("Log", id="log"):
                yield RunLog(id="run-log")
            with TabPane("Diff", id="diff"):
                yield DiffView(id="run-diff")
            with TabPane("Verdicts", id="verdicts"):
                yield VerdictsView(id="run-verdicts")
            with TabPane("Memory", id="memory"):
                yield MemoryView(id="run-memory")
        yield Footer()

    async def on_mount(self) -> None:
        self.update_title()
        engine = self.looptui.engine
        history = await engine.history.events(self.run_id, limit=KEPT_EVENTS)
        log = self.query_one(RunLog)
        log.add(history)
        log.flush()
        # from the last event shown: nothing stored meanwhile is missed, nothing shown twice
        last = history[-1].id if history and history[-1].id is not None else 0
        self.follow(engine.subscribe(self.run_id, after=last))
        # a clock, not a poll: a running run's elapsed time moves on by itself
        self.set_interval(1.0, self.tick_clock, name="run clock")

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "follow")

    @work(group="follow", exit_on_error=False)
    async def follow(self, subscription: Feed) -> None:
        try:
            async for batch in subscription:
                self.query_one(RunLog).add(batch)
                if any(event.kind in RELOADING_KINDS for event in batch):
                    self._stale |= {"diff", "verdicts", "memory"}
                    self.reload_current()
        finally:
            subscription.close()

    @on(LooptuiApp.RunsChanged)
    def run_changed(self, message: LooptuiApp.RunsChanged) -> None:
        if self.run_id in message.run_ids:
            self.update_title()

    @on(LooptuiApp.ConnectionChanged)
    def connection_changed(self) -> None:
        self.update_title()

    def tick_clock(self) -> None:
        summary = self.looptui.board.summaries.get(self.run_id)
        if summary is not None and summary.status.is_active:
            self.update_title()

    def update_title(self) -> None:
        summary = self.looptui.board.summaries.get(self.run_id)
        if summary is None:
            return
        run = summary.run
        parts = [
            f"[b]{run.loop}[/] {run.id}",
            run.status.value,
            f"iteration {summary.iteration}/{run.max_iterations}",
            format.duration(summary.elapsed(self.looptui.clock())),
            format.diff_stat(run.diff),
            run.branch,
        ]
        if run.error and not run.status.is_active:
            parts.append(f"[$verdict-fail]{run.error}[/]")
        if self.looptui.trouble:  # where the runs are driven is the grid's business
            parts.append(self.looptui.connection_line)
        self.query_one("#run-title", Static).update("  ·  ".join(parts))
        self.refresh_bindings()

    # -- tabs, loaded when shown -----------------------------------------------------------

    @on(TabbedContent.TabActivated)
    def tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self.reload_current()
        pane = event.pane
        content = pane.children[0] if pane.children else None
        if content is not None and content.focusable:
            content.focus()  # so that the arrows and page keys scroll what is shown

    def reload_current(self) -> None:
        tab = self.query_one(TabbedContent).active
        if tab in self._stale:
            self._stale.discard(tab)
            self.load(tab)

    @work(group="load", exit_on_error=False)
    async def load(self, tab: str) -> None:
        try:
            await self._load(tab)
        except LooptuiError as exc:
            self._stale.add(tab)
            self.notify(str(exc), title=f"cannot show the {tab}", severity="error")

    async def _load(self, tab: str) -> None:
        engine = self.looptui.engine
        history = engine.history
        if tab == "diff":
            view = self.query_one(DiffView)
            await view.show(await engine.patch(self.run_id))
        elif tab == "verdicts":
            await self.query_one(VerdictsView).show(
                await history.iterations(self.run_id),
                await history.check_results(self.run_id),
                await history.verdicts(self.run_id),
            )
        elif tab == "memory":
            await self.query_one(MemoryView).show(await history.notes(self.run_id))

    # -- actions -------------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_review(self) -> None:
        self.looptui.review_run(self.run_id)

    async def action_stop(self) -> None:
        await self.looptui.stop_run(self.run_id)

    def action_expand(self) -> None:
        log = self.query_one(RunLog)
        log.expanded = not log.expanded

    def action_split(self) -> None:
        view = self.query_one(DiffView)
        view.split = not view.split

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        summary = self.looptui.board.summaries.get(self.run_id)
        status = summary.status if summary else RunStatus.QUEUED
        if action == "stop":
            return status.is_active
        if action == "review":
            return not status.is_active and status.has_workspace
        return True
