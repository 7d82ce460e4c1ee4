"""The agent screen: one run's log (with `/` to find a word), diff, verdicts, memory and the
prompts its iterations were given, in tabs."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.widgets import Input, Static, TabbedContent, TabPane

from looptui.engine import LooptuiError
from looptui.engine.models import Run, RunStatus, status_reason
from looptui.engine.store.feed import Feed
from looptui.protocol.events import EventKind
from looptui.tui import format
from looptui.tui.app import LooptuiApp
from looptui.tui.widgets.diff_view import DiffView
from looptui.tui.widgets.evidence import PromptView, VerdictsView
from looptui.tui.widgets.footer import KeysFooter
from looptui.tui.widgets.log_search import SearchBar
from looptui.tui.widgets.memory_list import MemoryList
from looptui.tui.widgets.run_log import KEPT_EVENTS, RunLog
from looptui.tui.worktree import EDIT_BINDING, WORKTREE_BINDINGS, WorktreeScreen

RELOADING_KINDS = {EventKind.COMMIT, EventKind.VERDICT, EventKind.NOTE, EventKind.STATUS}
LOADED_TABS = {"diff", "verdicts", "memory", "prompt"}  # read from the store when shown
SEARCH_ACTIONS = {"search", "next_match", "previous_match"}


class RunScreen(WorktreeScreen):
    """Everything one run did, live while it goes."""

    CSS_PATH = "run.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Close the search, or go back"),
        # before the tabs, which the tab bar names: 80 columns keep it in the footer
        Binding("v", "review", "Review", tooltip="Review the diff hunk by hunk, then merge"),
        Binding("1", "tab('log')", "Log"),
        Binding("2", "tab('diff')", "Diff"),
        Binding("3", "tab('verdicts')", "Verdicts"),
        Binding("4", "tab('memory')", "Memory"),
        Binding("5", "tab('prompt')", "Prompt", tooltip="The prompt each iteration was given"),
        Binding("slash", "search", "Find", tooltip="Find a word in the log"),
        # out of the footer (full at 80 columns already); `?` and the palette list them
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "previous_match", "Previous match", show=False),
        Binding("s", "stop", "Stop", tooltip="Stop the run (its worktree is kept)"),
        Binding("e", "expand", "Expand tools", tooltip="Show tool calls whole or as one line"),
        # the footer is full at 80 columns: `?` and the palette list it
        Binding("w", "wrap", "Wrap lines", show=False, tooltip="Wrap long lines of the log"),
        Binding("u", "split", "Split/unified", tooltip="Show the diff side by side or unified"),
        EDIT_BINDING,
        *WORKTREE_BINDINGS,
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self._stale = set(LOADED_TABS)

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="run-title")
        with TabbedContent(initial="log"):
            with TabPane("Log", id="log"):
                yield RunLog(id="run-log")
                yield SearchBar(id="log-search")
            with TabPane("Diff", id="diff"):
                yield DiffView(id="run-diff")
            with TabPane("Verdicts", id="verdicts"):
                yield VerdictsView(id="run-verdicts")
            with TabPane("Memory", id="memory"):
                yield MemoryList(id="run-memory")
            with TabPane("Prompt", id="prompt"):
                yield PromptView(id="run-prompt")
        yield KeysFooter()

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
                kinds = {event.kind for event in batch}
                if kinds & RELOADING_KINDS:
                    self._stale |= LOADED_TABS
                    self.reload_current()
                elif EventKind.ITERATION in kinds:  # a new iteration: its prompt is stored
                    self._stale.add("prompt")
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
        now = self.looptui.clock()
        limit = self.looptui.loop_limit(run.loop)
        parts = [
            f"[b]{run.loop}[/] {run.id}",
            run.status.value,
            format.iteration_long(summary.iteration, run, limit),
            format.times(summary.working(now), summary.waiting(now)),
            format.diff_stat(run.diff),
        ]
        spent = format.cost(run.input_tokens, run.output_tokens, run.cost_usd)
        parts += [spent] if spent else []
        reason = status_reason(run.status, run.error)
        if reason and not run.status.is_active:
            parts.append(f"[$verdict-fail]{escape(reason)}[/]")
        if self.looptui.trouble:  # where the runs are driven is the grid's business
            parts.append(self.looptui.connection_line)
        width = self.size.width - 2
        self.query_one("#run-title", Static).update(
            f"{format.fit(parts, width)}\n{self.where(run, width)}"
        )
        self.refresh_bindings()

    def where(self, run: Run, width: int) -> str:
        """The line on where the run's work is: its branch and worktree (or that they are
        gone), the worktree's path cut to the width (`y` copies it whole)."""
        if not run.status.has_workspace:
            gone = f"{run.status.value}: branch {escape(run.branch)} and its worktree are gone"
            return f"[$text-muted]{gone}[/]"
        branch = f"branch [b]{escape(run.branch)}[/]  ·  worktree "
        room = width - len(f"branch {run.branch}  ·  worktree ")
        return branch + escape(format.path_tail(run.worktree, max(room, 12)))

    def on_resize(self) -> None:
        self.update_title()

    def file_at_hand(self) -> tuple[str, int] | None:
        return self.query_one(DiffView).place_at_hand()

    # -- tabs, loaded when shown -----------------------------------------------------------

    @on(TabbedContent.TabActivated)
    def tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self.reload_current()
        self.refresh_bindings()  # the log's search keys apply to the log alone
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
            self.query_one(MemoryList).show(await engine.memory(run=self.run_id))
        elif tab == "prompt":
            iterations = await history.iterations(self.run_id)
            await self.query_one(PromptView).show(iterations, self.looptui.clock())

    # -- actions -------------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_back(self) -> None:
        """Escape: close the search when it is open, else leave the screen."""
        bar = self.query_one(SearchBar)
        if bar.shown and self.query_one(TabbedContent).active == "log":
            bar.hide()
            self.query_one(RunLog).clear_search()
            self.query_one(RunLog).focus()
            self.refresh_bindings()
        else:
            self.app.pop_screen()

    def action_search(self) -> None:
        self.query_one(SearchBar).show()
        self.refresh_bindings()

    @on(Input.Submitted, "#log-search")
    def search_submitted(self, event: Input.Submitted) -> None:
        """Enter: the first match from the top of the view; back to the log, where n and N go
        on, when there is one (else the bar keeps the focus for another word)."""
        log = self.query_one(RunLog)
        log.match = None  # a new word starts from where the reader is
        if self._find(event.value, forward=True):
            log.focus()
        self.refresh_bindings()

    def action_next_match(self) -> None:
        self._find(self.query_one(SearchBar).value, forward=True)

    def action_previous_match(self) -> None:
        self._find(self.query_one(SearchBar).value, forward=False)

    def _find(self, word: str, forward: bool) -> bool:
        if not word.strip():
            return False
        log = self.query_one(RunLog)
        match = log.search(word, forward)
        self.query_one(SearchBar).count(*log.match_rank(word))
        if match is None:
            self.notify(f"no match for {word!r} in the log", severity="warning")
        elif match.wrapped:
            end = "top" if forward else "bottom"
            self.notify(f"went on from the {end} of the log", timeout=2)
        return match is not None

    def action_review(self) -> None:
        self.looptui.review_run(self.run_id)

    async def action_stop(self) -> None:
        await self.looptui.stop_run(self.run_id)

    def action_expand(self) -> None:
        log = self.query_one(RunLog)
        log.expanded = not log.expanded

    def action_wrap(self) -> None:
        log = self.query_one(RunLog)
        log.wrap = not log.wrap
        self.notify("long lines wrap" if log.wrap else "long lines scroll sideways", timeout=2)

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
        if action == "edit":  # the file of the diff shown
            tabs = self.query(TabbedContent)
            return bool(tabs) and tabs.first().active == "diff"
        if action in SEARCH_ACTIONS:  # the log's, shown only with it
            tabs = self.query(TabbedContent)
            if not tabs or tabs.first().active != "log":
                return False
            if action != "search":  # listed, but idle until a word was looked for
                return True if self.query_one(SearchBar).value.strip() else None
        return True
