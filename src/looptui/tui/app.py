"""The looptui app: the engine's runs on screen, the human's decisions sent back.

The app holds the supervisor (the service's client, or the engine in this process) and one
bridge worker that folds its event stream into the board, then tells the screens which runs
changed (`RunsChanged`, coalesced) and how the connection to the service stands
(`ConnectionChanged`); screens react to those messages and call the supervisor. Nothing here
runs a git or agent command itself.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import ClassVar, Literal

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from looptui.client.api import Supervisor
from looptui.client.remote import RemoteSupervisor, State
from looptui.demo import is_demo_repository
from looptui.engine import LooptuiError
from looptui.engine.models import Run, RunStatus
from looptui.invocation import looptui_command
from looptui.protocol.events import Event, EventKind, IterationMarked
from looptui.tui.board import LINE_KINDS, Board, RunSummary, summaries_from
from looptui.tui.settings import Settings
from looptui.tui.themes import load_themes, semantic_defaults

logger = logging.getLogger(__name__)

DEFAULT_THEME = "looptui-dusk"
RESYNC_INTERVAL = 2.0  # how often runs changed by another looptui process are picked up
PUBLISH_DELAY = 0.1  # changes are told to the screens at most ten times a second
BRIDGE_RETRY = 2.0  # seconds before a bridge whose service could not be reached tries again
Connection = Literal["local", "connected", "reconnecting", "closed"]
ANNOUNCED = {
    RunStatus.SUCCEEDED: ("goal met: ready for your review (press r)", "information"),
    RunStatus.UNCHANGED: ("the goal held with no change: nothing to merge", "information"),
    RunStatus.FAILED: ("failed", "error"),
    RunStatus.STALLED: ("stalled", "warning"),
    RunStatus.PAUSED: ("paused: its evaluator keeps failing (press r)", "warning"),
    RunStatus.INTERRUPTED: ("interrupted", "warning"),
    RunStatus.DEFERRED: ("deferred", "warning"),
}


class LooptuiApp(App[None]):
    """Supervise a repository's runs: a grid of them, each one's evidence, review and merge."""

    # absolute: subclasses live elsewhere. The grid's file is read with the app's: read when
    # the first screen is pushed, it costs a second parse of every rule and a restyle of the
    # app before the first frame (its rules are app-wide once read, either way)
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        Path(__file__).parent / "app.tcss",
        Path(__file__).parent / "screens" / "grid.tcss",
    ]
    TITLE = "looptui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "needs_you", "Needs you", tooltip="Runs waiting for your review"),
        Binding("question_mark", "help", "Keys", tooltip="Every key of this screen"),
        Binding("q", "quit", "Quit", tooltip="Quit (asks first while runs go)"),
    ]

    @dataclass
    class RunsChanged(Message):
        """These runs' summaries on the board changed (posted to every screen of the stack,
        a few times a second at most however fast the runs stream)."""

        run_ids: frozenset[str]

    @dataclass
    class RunStarted(Message):
        """The user started this run (`n`, `R`, the palette): the grid puts its cursor on it."""

        run_id: str

    @dataclass
    class ConnectionChanged(Message):
        """The connection to the service changed; `LooptuiApp.connection_line` words it."""

        connection: Connection

    def __init__(
        self,
        engine: Supervisor,
        settings: Settings,
        theme_dirs: Iterable[Path] = (),
        clock: Callable[[], float] = time.time,
        bell: bool = True,
        root: Path | None = None,
    ) -> None:
        """`root`: the repository's directory, shown when it is the demo's."""
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.board = Board()
        self._bell = bell
        self._theme_dirs = list(theme_dirs)
        self._themes_ready = False
        self.repository_name = engine.name
        # where the demo is (a temporary directory the user must find again); None otherwise
        self.demo_path = root if root is not None and is_demo_repository(root) else None
        self.connection: Connection = "local"
        self.bridge_error: str | None = None  # why live updates stopped, while they are
        self._publishing = False

    @property
    def remote(self) -> RemoteSupervisor | None:
        """The service's client, when the runs belong to the service."""
        return self.engine if isinstance(self.engine, RemoteSupervisor) else None

    def loop_limit(self, loop: str) -> int | None:
        """The max_iterations of `loop` as configured here (None: not configured), which a
        run's limit grows by with each comment."""
        config = self.engine.config
        found = config.loops.get(loop) if config is not None else None
        return found.max_iterations if found is not None else None

    @property
    def trouble(self) -> bool:
        """Whether live updates may be late or stopped (the connection is down, the bridge
        failed): every screen says so, not just the grid."""
        return self.bridge_error is not None or self.connection in ("reconnecting", "closed")

    @property
    def connection_line(self) -> str:
        """Where the runs are driven, for titles: the service (and its pid), or this window."""
        if self.bridge_error is not None:
            return f"[$error]live updates stopped: {self.bridge_error}[/]"
        if self.connection == "local":
            return "in this window (no service)"
        if self.connection == "reconnecting":
            return "[$warning]reconnecting to the service…[/]"
        if self.connection == "closed":
            return "disconnected from the service"
        service = self.engine.service
        return f"service pid {service.pid}" if service is not None else "service"

    # -- start-up ------------------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._register_themes()
        history = self.engine.history
        # the cursor before loading: the bridge starts from it, so no event falls in between
        cursor = await history.last_event_id()
        remote = self.remote
        if remote is not None:
            self.connection = remote.state
            remote.on_state = self._connection_changed
            for notice in remote.notices:
                self.notify(notice, title="looptui service", timeout=8)
        # at once, not one after another: over the socket each is a round trip
        runs, lines, verdicts = await asyncio.gather(
            history.runs(), history.latest_lines(LINE_KINDS), history.latest_verdicts()
        )
        for summary in summaries_from(runs, lines, verdicts):
            self.board.add(summary)
        self.board.take_dirty()
        from looptui.tui.screens.grid import GridScreen

        await self.push_screen(GridScreen(self.clock))
        self.bridge(cursor)
        if remote is None:  # a service sends every run's events; an engine here only its own
            self.set_interval(RESYNC_INTERVAL, self.resync, name="store resync")
        self.call_after_refresh(_freeze_start_up)

    def on_unmount(self) -> None:
        remote = self.remote
        if remote is not None:
            remote.on_state = lambda state: None

    def _register_themes(self) -> None:
        themes, errors = load_themes(self._theme_dirs)
        for error in errors:
            self.notify(error, title="theme not loaded", severity="warning")
        for theme in themes:
            self.register_theme(theme)
        wanted = self.settings.theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        self._themes_ready = True

    def get_css_variables(self) -> dict[str, str]:
        variables = super().get_css_variables()
        return {**semantic_defaults(variables), **variables}

    def watch_theme(self, theme: str) -> None:
        """Remember a theme the user picks (the one set at start-up is already remembered)."""
        if self.settings.theme == theme or not self._themes_ready:
            return
        self.settings.theme = theme
        try:
            self.settings.save()
        except OSError as exc:
            self.notify(f"cannot remember the theme: {exc}", severity="warning")

    # -- the bridge: engine events in, messages to the screens out ----------------------------

    @work(group="engine-bridge", exit_on_error=False)
    async def bridge(self, cursor: int | None) -> None:
        """Fold every event after `cursor` into the board, for as long as the app runs. The
        service's client reconnects by itself; should it give up, the title says so and the
        bridge tries again from its cursor, so no event is lost or taken twice."""
        while True:
            # the grid shows each run's newest line: the older ones of a batch need not come
            subscription = self.engine.subscribe(after=cursor, lines="newest")
            try:
                while (batch := await subscription.next_batch()) is not None:
                    if self.bridge_error is not None:
                        self.bridge_error = None
                        self._tell_screens(lambda: self.ConnectionChanged(self.connection))
                    for event in batch:
                        try:
                            await self.take(event)
                        except LooptuiError as exc:  # one bad read must not stop the updates
                            self.notify(str(exc), title="live update failed", severity="error")
                        cursor = event.id if event.id is not None else cursor
                    self.publish_soon()
                return
            except LooptuiError as exc:  # the service cannot be reached, for now
                self._bridge_stopped(str(exc))
                await asyncio.sleep(BRIDGE_RETRY)
            finally:
                subscription.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bridge that died must show it: live updates would stop without a word."""
        worker = event.worker
        if worker.group == "engine-bridge" and event.state is WorkerState.ERROR:
            logger.error("the bridge stopped", exc_info=worker.error)
            self._bridge_stopped(f"{type(worker.error).__name__}: {worker.error}")

    def _bridge_stopped(self, why: str) -> None:
        if self.bridge_error is None:
            self.notify(why, title="live updates stopped", severity="error", timeout=10)
        self.bridge_error = why
        self._tell_screens(lambda: self.ConnectionChanged(self.connection))

    async def take(self, event: Event) -> None:
        """Fold one engine event into the board (`publish_soon` tells the screens)."""
        board = self.board
        if event.run_id not in board.summaries:
            run = await self.engine.history.run(event.run_id)
            board.add(RunSummary(run=run, iteration=run.iterations))
        board.apply(event)
        if event.kind is EventKind.STATUS or (
            isinstance(event.payload, IterationMarked) and event.payload.phase == "finished"
        ):
            summary = board.summaries[event.run_id]
            summary.run = await self.engine.history.run(event.run_id)  # the record is the truth
        if event.kind is EventKind.STATUS:
            self.announce(board.summaries[event.run_id])

    def publish_soon(self) -> None:
        """Tell the screens, shortly, which runs changed: a burst of events is one message."""
        if not self._publishing and self.board.dirty:
            self._publishing = True
            self.set_timer(PUBLISH_DELAY, self._publish, name="publish run changes")

    def _publish(self) -> None:
        self._publishing = False
        changed = frozenset(self.board.take_dirty())
        if changed:
            self._tell_screens(lambda: self.RunsChanged(changed))

    def _tell_screens(self, message: Callable[[], Message]) -> None:
        """Post a message to every screen of the stack (a screen below a dialog keeps its
        cards current too); each gets its own instance."""
        for screen in self.screen_stack:
            screen.post_message(message())

    def _connection_changed(self, state: State) -> None:
        """The service's client says how its connection stands (called on the app's loop)."""
        before, self.connection = self.connection, state
        if state == "reconnecting" and before == "connected":
            self.notify(
                "lost the connection to the looptui service; reconnecting…",
                severity="warning",
                timeout=6,
            )
        elif state == "connected" and before == "reconnecting":
            service = self.engine.service
            pid = f" (pid {service.pid})" if service is not None else ""
            self.notify(f"connected to the looptui service again{pid}", timeout=6)
        self._tell_screens(lambda: self.ConnectionChanged(state))

    @work(group="resync", exclusive=True, exit_on_error=False)
    async def resync(self) -> None:
        """Pick up what another looptui process did: runs it started, merged or discarded.
        This engine's own runs are already live through the bridge."""
        try:
            runs = await self.engine.history.runs()
        except LooptuiError:
            return
        own = set(await self.engine.active_runs())
        board = self.board
        for run in runs:
            summary = board.summaries.get(run.id)
            if summary is None:
                board.add(RunSummary(run=run, iteration=run.iterations))
            elif run.id not in own and _changed(summary.run, run):
                summary.run, summary.iteration = run, run.iterations
                board.dirty.add(run.id)
        self.publish_soon()

    def announce(self, summary: RunSummary) -> None:
        if summary.status not in ANNOUNCED:
            return
        text, severity = ANNOUNCED[summary.status]
        detail = f": {summary.run.error}" if summary.run.error else ""
        self.notify(
            f"{summary.run.loop} {summary.id} {text}{detail if severity != 'information' else ''}",
            severity=severity,  # type: ignore[arg-type]
            timeout=6,
        )
        if self._bell:
            self.bell()

    # -- commands up to the engine -------------------------------------------------------------

    async def start_run(
        self, loop: str, prompt: str | None, agent: str | None = None
    ) -> Run | None:
        """Start a run of `loop`; None (and a toast saying why) when it could not start. The
        screens are told at once, so that the grid selects the new card."""
        try:
            run = await self.engine.start_run(loop, prompt, agent=agent)
        except LooptuiError as exc:
            self.notify(str(exc), title="run not started", severity="error")
            return None
        if run.id not in self.board.summaries:
            self.board.add(RunSummary(run=run))
            self.publish_soon()
        self._tell_screens(lambda: self.RunStarted(run.id))
        return run

    async def stop_run(self, run_id: str) -> None:
        try:
            await self.engine.stop(run_id)
        except LooptuiError as exc:
            self.notify(str(exc), title="not stopped", severity="error")

    def open_run(self, run_id: str) -> None:
        from looptui.tui.screens.run import RunScreen

        self.push_screen(RunScreen(run_id))

    def open_memory(self, loop: str) -> None:
        """The memory of `loop`: its lessons and notes, to accept, edit or delete."""
        from looptui.tui.screens.memory import MemoryScreen

        self.push_screen(MemoryScreen(loop))

    def review_run(self, run_id: str) -> None:
        from looptui.tui.screens.review import ReviewScreen

        self.push_screen(ReviewScreen(run_id))

    # -- app-wide actions ----------------------------------------------------------------------

    def action_new_run(self) -> None:
        from looptui.tui.screens.new_run import NewRunScreen

        config = self.engine.config
        if config is None or not config.loops:
            self.notify("no loops: write them in looptui.toml (looptui init)", severity="error")
            return
        self.push_screen(NewRunScreen(config), self._start_from_dialog)

    async def _start_from_dialog(self, choice: tuple[str, str | None, str | None] | None) -> None:
        if choice is not None:
            await self.start_run(*choice)

    def action_loops(self) -> None:
        from looptui.tui.screens.loops import LoopsScreen

        if not isinstance(self.screen, LoopsScreen):
            self.push_screen(LoopsScreen())

    def action_search(self) -> None:
        from looptui.tui.screens.search import SearchScreen

        if not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen())

    def action_needs_you(self) -> None:
        from looptui.tui.screens.needs_you import NeedsYouScreen

        if not isinstance(self.screen, NeedsYouScreen):
            self.push_screen(NeedsYouScreen())

    def action_help(self) -> None:
        from looptui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        active = [s for s in self.board.summaries.values() if s.status.is_active]
        if not active:
            self.exit()
            return
        if self.engine.service is not None:  # they go on in the service, unless stopped
            from looptui.tui.screens.quit import QuitScreen

            self.push_screen(QuitScreen(len(active)), self._quit_as_chosen)
            return
        from looptui.tui.screens.confirm import ConfirmScreen

        question = (
            f"{len(active)} run{'s are' if len(active) > 1 else ' is'} still going in this "
            "window (the service is off). Quit and stop them? Their worktrees and everything "
            "they did are kept."
        )
        self.push_screen(ConfirmScreen(question, "Quit"), self._quit_if_confirmed)

    def _quit_if_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self.exit()

    async def _quit_as_chosen(self, choice: str | None) -> None:
        if choice not in ("leave", "stop"):
            return
        stopped = 0
        if choice == "stop":
            for summary in list(self.board.summaries.values()):
                if summary.status.is_active:
                    await self.stop_run(summary.id)
                    stopped += 1
        self.exit(message=await self._goodbye(stopped if choice == "stop" else None))

    async def _goodbye(self, stopped: int | None) -> str:
        """What the terminal says once the app is gone: the runs stopped, or those that go on
        and where (as the service counts them now: the board may lag a moment behind)."""
        if stopped is not None:
            return (
                f"stopped {stopped} run{'s' if stopped != 1 else ''}; their work is kept: "
                "`looptui resume RUN` continues one"
            )
        try:
            active = len(await self.engine.active_runs())
        except LooptuiError:  # the service cannot be asked: the board's count, then
            active = sum(s.status.is_active for s in self.board.summaries.values())
        if not active:
            return f"no run is going; `{looptui_command()}` opens the app again"
        service = self.engine.service
        pid = f" (pid {service.pid})" if service is not None else ""
        runs, them = ("1 run goes", "it") if active == 1 else (f"{active} runs go", "them")
        looptui = looptui_command()  # as written, even with the venv not on PATH
        return (
            f"{runs} on in the looptui service{pid}: "
            f"`{looptui} status` lists {them}, `{looptui}` opens the app again"
        )

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette offers looptui's actions first: those of the current screen, by their
        description, then the app-wide ones (a new run, loops, search, each loop's memory)
        from any screen; then Textual's own, less those looptui has under the same name."""
        own: list[SystemCommand] = []
        seen = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if (
                not binding.description
                or binding.action in seen
                or not active.enabled
                or not is_looptui_binding(active.node, binding)
            ):
                continue
            seen.add(binding.action)
            node = active.node
            own.append(
                SystemCommand(
                    binding.description,
                    binding.tooltip or f"key: {self.get_key_display(binding) or key}",
                    functools.partial(self.call_later, self.run_action, binding.action, node),
                )
            )
        for action, title, help_text in APP_WIDE:
            if action not in seen:
                own.append(
                    SystemCommand(
                        title,
                        help_text,
                        functools.partial(self.call_later, self.run_action, action),
                    )
                )
        config = self.engine.config
        for loop in sorted(config.loops) if config is not None else ():
            own.append(
                SystemCommand(
                    f"Memory of {loop}",
                    f"The lessons and notes of loop {loop}: accept, edit, delete, sources",
                    functools.partial(self.open_memory, loop),
                )
            )
        yield from own
        titles = {command.title for command in own}
        for command in super().get_system_commands(screen):
            if command.title not in titles:
                yield command


# what the palette offers on every screen, whichever screen has the key (action, title, help)
APP_WIDE = (
    ("new_run", "New run", "Start a run of a loop"),
    ("loops", "Loops", "Each loop's triggers, next fire times, last firings"),
    ("search", "Search runs", "Search every run's output, tools, checks, verdicts and notes"),
)


def is_looptui_binding(node: object, binding: Binding) -> bool:
    """Whether `binding` is one of looptui's own (declared by a looptui class of `node`),
    not one Textual gives every app, screen or scrolling widget."""
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("looptui."):
            continue
        for declared in cls.__dict__.get("BINDINGS", ()):
            if isinstance(declared, Binding):
                keys, action = declared.key.split(","), declared.action
            else:
                keys, action = declared[0].split(","), declared[1]
            if action == binding.action and binding.key in [k.strip() for k in keys]:
                return True
    return False


def _changed(shown: Run, stored: Run) -> bool:
    return (shown.status, shown.head_commit, shown.finished_at, shown.iterations) != (
        stored.status,
        stored.head_commit,
        stored.finished_at,
        stored.iterations,
    )


_frozen = False


def _freeze_start_up() -> None:
    """What start-up built lives as long as the app: take it out of the collector's full
    passes, which otherwise grow with it and stall key presses under load (bench/RESULTS.md).
    Garbage is collected first, so that none is kept for good; once per process, as freezing
    is process-wide."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
