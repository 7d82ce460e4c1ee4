"""The `looptui` command. Errors are one line on stderr and exit status 2."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.text import Text

from looptui import __version__
from looptui.console import clean, make_console, render_event, run_to_json, runs_table
from looptui.engine import Engine, LooptuiError, RunStatus, load_config
from looptui.engine.agents.prompt_files import sweep_stale_prompt_files
from looptui.engine.config import CONFIG_NAME, write_starter_config
from looptui.engine.models import Run
from looptui.engine.process import kill_process_groups
from looptui.engine.store.feed import Feed
from looptui.engine.workspace import Repository
from looptui.engine.workspace.locations import ensure_directory, state_home
from looptui.protocol.events import EventKind, StatusChanged

P = ParamSpec("P")
T = TypeVar("T")

# The goal holds: 0, whether the run changed something or found it held already.
EXIT_FOR_STATUS = {RunStatus.SUCCEEDED: 0, RunStatus.UNCHANGED: 0, RunStatus.CANCELLED: 130}
EXIT_USAGE = 2
PRINT_BACKLOG = 2000  # events the terminal may fall behind by before output lines are skipped
QUICK_FLUSH = 1.0  # seconds a second Ctrl-C gives the store before looptui exits
LOG_NAME = "looptui.log"  # in the state directory: tracebacks of looptui's own bugs
LOG_PAGE = 1000  # events `looptui log` reads from the store at a time


def one_line_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turn a LooptuiError into `looptui: <message>` on stderr and exit status 2, and any
    other exception (a bug) into one line pointing at the log that holds its traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except LooptuiError as exc:
            click.echo(f"looptui: {_one_line(str(exc))}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:  # Ctrl-C before a run's own handler was in place
            click.echo("looptui: interrupted", err=True)
            sys.exit(EXIT_FOR_STATUS[RunStatus.CANCELLED])
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # click's own ways to end a command
        except Exception as exc:  # the last resort: never a traceback on the user's screen
            click.echo(f"looptui: internal error: {_internal_error(exc)}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _internal_error(exc: Exception) -> str:
    """A line naming `exc` and where its traceback was written (the state dir's log, or a
    temporary file when that is unusable too)."""
    summary = _one_line(f"{type(exc).__name__}: {exc}")[:300]
    trace = "".join(traceback.format_exception(exc))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    entry = f"--- {stamp} looptui {__version__} pid {os.getpid()}: {sys.argv[1:]}\n{trace}\n"
    log_path = state_home() / LOG_NAME
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(log_path, "a", encoding="utf-8") as log_file:
            log_file.write(entry)
    except OSError:
        try:
            descriptor, name = tempfile.mkstemp(prefix="looptui-", suffix=".log")
            with os.fdopen(descriptor, "w", encoding="utf-8") as log_file:
                log_file.write(entry)
            log_path = Path(name)
        except OSError:
            return f"{summary} (no log could be written)"
    return f"{summary} (the details are in {log_path})"


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def with_engine(body: Callable[[Engine], Awaitable[T]], with_config: bool = False) -> T:
    repository = Repository(Path.cwd())
    repository.require_commits()
    config = load_config(repository.root / CONFIG_NAME) if with_config else None
    if with_config:  # runs will start: their worktrees need the state directory
        ensure_directory(repository.worktrees_dir)
    engine = await Engine.open(repository.root, os.environ, config)
    try:
        await _warn_of_orphans(engine)
        return await body(engine)
    finally:
        await engine.close()


async def _warn_of_orphans(engine: Engine) -> None:
    """One line on stderr when looptui branches or worktrees exist that the store does not
    know (its file was deleted, say): they would otherwise linger unseen."""
    repository = engine.repository
    runs = await engine.history.runs()

    def unknown() -> tuple[list[str], list[Path]]:
        branches, worktrees = repository.looptui_leftovers()
        known_branches = {run.branch for run in runs}
        known_worktrees = {Path(run.worktree).resolve() for run in runs}
        return (
            [branch for branch in branches if branch not in known_branches],
            [path for path in worktrees if path not in known_worktrees],
        )

    branches, worktrees = await asyncio.to_thread(unknown)
    if not branches and not worktrees:
        return
    remove = [f"git worktree remove --force {shlex.quote(str(path))}" for path in worktrees]
    if branches:
        remove.append(f"git branch -D {' '.join(shlex.quote(b) for b in branches)}")
    click.echo(
        f"looptui: warning: {len(branches)} looptui branch(es) and {len(worktrees)} "
        f"worktree(s) belong to no run in the store {repository.store_path} (was it deleted?); "
        f"remove them with: {' && '.join(remove)}",
        err=True,
    )


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="looptui")
@click.pass_context
def main(context: click.Context) -> None:
    """Supervise loops of AI coding agents, each run in its own git worktree.

    Without a command, opens the app on the repository you are in.
    """
    # A prompt file that a looptui killed with SIGKILL left behind goes now at the latest.
    sweep_stale_prompt_files()
    if context.invoked_subcommand is None:
        open_app(Path.cwd())


@one_line_errors
def open_app(start: Path, loops: Sequence[str] = ()) -> None:
    """Open the app on the repository containing `start`, first starting `loops`."""
    from looptui.tui import run_app

    repository = Repository(start)
    repository.require_commits()
    config_path = repository.root / CONFIG_NAME
    config = load_config(config_path) if config_path.exists() else None
    run_async(run_app(repository.root, os.environ, config, loops))


@main.command()
@one_line_errors
def init() -> None:
    """Write a starter looptui.toml at the repository root (never overwrites)."""
    repository = Repository(Path.cwd())
    path = repository.root / CONFIG_NAME
    write_starter_config(path)
    click.echo(f"wrote {path}")


@main.command(name="run")
@click.argument("loop")
@click.option("--prompt", help="Use this prompt instead of the loop's own.")
@one_line_errors
def run_command(loop: str, prompt: str | None) -> None:
    """Run LOOP headless until its goal holds or its budget runs out.

    Exits 0 only when the goal was met; 1 when the run failed or stalled; 130 when cancelled.
    """
    status = run_async(with_engine(lambda engine: _run(engine, loop, prompt), with_config=True))
    sys.exit(EXIT_FOR_STATUS.get(status, 1))


async def _run(engine: Engine, loop: str, prompt: str | None) -> RunStatus:
    console = make_console()
    # Ctrl-C from here on stops the run (recorded as cancelled) instead of cancelling
    # `start_run` half-way through; a second one exits at once.
    stopped = asyncio.Event()
    started: list[Run] = []
    event_loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stopped.is_set():
            _exit_now(engine, started[0] if started else None, console)
        stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        event_loop.add_signal_handler(sig, on_signal)
    try:
        run = await engine.start_run(loop, prompt)
        started.append(run)
        console.print(
            Text.assemble(
                ("run ", "bold"),
                (run.id, "bold"),
                " of loop ",
                (run.loop, "bold"),
                f" on branch {run.branch}\n  worktree {run.worktree}",
            )
        )
        subscription = engine.subscribe(run.id)
        printer = asyncio.create_task(_print_events(subscription, console, stopped.set))
        finished = asyncio.create_task(engine.wait(run.id))
        stop_requested = asyncio.create_task(stopped.wait())
        await asyncio.wait({finished, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if stopped.is_set() and not finished.done():
            console.print(
                "[magenta]stopping: the agent is stopped, the worktree is kept "
                "(Ctrl-C again to quit at once)[/]"
            )
            await engine.stop(run.id)
        stop_requested.cancel()
        final = await finished
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            event_loop.remove_signal_handler(sig)
    await engine.store.flush()
    subscription.close()
    await printer
    console.print(
        Text.assemble(
            f"run {final.id}: ",
            (final.status.value, "bold"),
            f" after {final.iterations} iteration(s)",
            f" — {final.error}" if final.error else "",
        )
    )
    if final.status is RunStatus.SUCCEEDED:
        console.print(
            f"review it: looptui diff {final.id}; land it: looptui merge {final.id} [--squash]"
        )
        if engine.config is not None and engine.config.loop(final.loop).evaluator is None:
            console.print(
                "judged by its checks alone: no evaluator read the change, so code that only "
                "special-cases the tests' inputs would pass too (give the loop an evaluator)"
            )
    verdicts = await engine.history.verdicts(final.id)
    if verdicts and verdicts[-1][1].flags:
        flags = verdicts[-1][1].flags
        console.print(
            Text(  # plain text: a flag's "[rule]" is not markup
                f"not accepted: the tamper guard flagged {flags[0]}"
                + (f" and {len(flags) - 1} more" if len(flags) > 1 else "")
                + f"; see looptui log {final.id}. If changing the tests is the task, set "
                f"allow_test_edits = true in [loops.{final.loop}]"
            )
        )
    return final.status


def _exit_now(engine: Engine, run: Run | None, console: Any) -> None:
    """The second Ctrl-C: kill the agent and checks, record what can be recorded within a
    moment, and exit; the worktree is kept."""
    kill_process_groups()
    with contextlib.suppress(Exception, SystemExit):
        console.print("[magenta]quitting now: the agent was killed, the worktree is kept[/]")

    async def last_words() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(QUICK_FLUSH):
                if run is not None:
                    await engine.store.update_run(
                        run.id,
                        status=RunStatus.CANCELLED,
                        finished_at=time.time(),
                        error="cancelled: looptui quit at once on a second Ctrl-C",
                    )
                    engine.store.emit(run.id, StatusChanged(RunStatus.CANCELLED, "cancelled"))
                await engine.store.flush()
        _hard_exit()

    event_loop = asyncio.get_running_loop()
    _pending_exit.add(event_loop.create_task(last_words()))
    event_loop.call_later(QUICK_FLUSH + 0.5, _hard_exit)  # whatever the flush is stuck on


_pending_exit: set[asyncio.Task[None]] = set()


def _hard_exit() -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(EXIT_FOR_STATUS[RunStatus.CANCELLED])


async def _print_events(
    subscription: Feed, console: Console, on_closed_output: Callable[[], None]
) -> None:
    """Print a run's events as they come, a batch at a time; when the terminal falls behind
    by more than PRINT_BACKLOG events, output lines are counted instead of printed."""
    skipped = 0
    try:
        while (batch := await subscription.next_batch()) is not None:
            behind = len(batch) + subscription.backlog > PRINT_BACKLOG
            lines: list[Text] = []
            for event in batch:
                if event.kind is EventKind.STATUS:
                    continue  # the summary line says how it ended
                if behind and event.kind is EventKind.OUTPUT:
                    skipped += 1
                    continue
                if skipped:
                    lines.append(_skipped_line(skipped, event.run_id))
                    skipped = 0
                line = render_event(event)
                if line is not None:
                    lines.append(line)
            if skipped and not behind:
                lines.append(_skipped_line(skipped, batch[-1].run_id))
                skipped = 0
            with console:  # one write for the whole batch
                for line in lines:
                    console.print(line)
    except SystemExit:
        # rich's answer to a closed stdout (`looptui run | head`): stdout now goes to
        # /dev/null. Raised out of this task it would tear the event loop down mid-run and
        # hang; instead nobody is watching any more, so the run is stopped like on Ctrl-C.
        on_closed_output()


def _skipped_line(count: int, run_id: str) -> Text:
    return Text(
        f"  … {count} lines of output not shown: the terminal fell behind "
        f"(`looptui log {run_id}` has them)",
        style="dim",
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@one_line_errors
def status(as_json: bool) -> None:
    """List the runs of this repository."""

    async def body(engine: Engine) -> None:
        runs = await engine.history.runs()
        if as_json:
            verdicts = await engine.history.latest_verdicts()
            payload = [run_to_json(run, verdicts.get(run.id)) for run in runs]
            click.echo(json.dumps(payload, indent=2))
        elif not runs:
            click.echo("no runs yet; start one with `looptui run LOOP`")
        else:
            make_console().print(runs_table(runs))

    run_async(with_engine(body))


@main.command()
@click.argument("run_id", metavar="RUN")
@one_line_errors
def log(run_id: str) -> None:
    """Show everything RUN did: agent output, commits, checks, verdicts and notes."""

    async def body(engine: Engine) -> None:
        run = await engine.history.find_run(run_id)
        console = make_console()
        console.print(
            Text.assemble(
                ("run ", "bold"),
                (run.id, "bold"),
                f" loop {run.loop} agent {run.agent}: ",
                (run.status.value, "bold"),
                f" after {run.iterations}/{run.max_iterations} iterations",
                f" — {clean(run.error)}" if run.error else "",
            )
        )
        console.print(Text(f"  branch {run.branch} from {run.base_branch}@{run.base_commit[:10]}"))
        # Page by page, printed as it goes: a run may hold millions of lines.
        after = 0
        while page := await engine.history.events_page(run.id, after, LOG_PAGE):
            lines = [render_event(event, full_checks=True) for event in page]
            # One print per page: Rich's cost is mostly per call, not per line.
            console.print(Text("\n").join(line for line in lines if line is not None))
            last = page[-1].id
            assert last is not None  # events read from the store have their row id
            after = last

    run_async(with_engine(body))


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("--color/--no-color", default=None, help="Colour the diff (default: on a terminal).")
@one_line_errors
def diff(run_id: str, color: bool | None) -> None:
    """Show RUN's changes against its base commit, uncommitted and untracked files included."""
    use_color = sys.stdout.isatty() if color is None else color
    text = run_async(with_engine(lambda engine: engine.diff(run_id, color=use_color)))
    click.echo(text, nl=False)


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("--squash", is_flag=True, help="Land the work as one commit instead of a merge.")
@click.option("--force", is_flag=True, help="Merge even a run whose last verdict is not done.")
@one_line_errors
def merge(run_id: str, squash: bool, force: bool) -> None:
    """Merge RUN into its base branch, after a conflict preview; removes its worktree.

    Only a run whose last verdict is done merges without --force.
    """

    async def body(engine: Engine) -> str:
        run = await engine.history.find_run(run_id)
        commit = await engine.merge(run.id, squash=squash, force=force)
        return f"merged run {run.id} into {run.base_branch} as {commit[:10]}" + (
            " (squashed)" if squash else ""
        )

    click.echo(run_async(with_engine(body)))


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("--force", is_flag=True, help="Discard even work that was never merged.")
@one_line_errors
def discard(run_id: str, force: bool) -> None:
    """Remove RUN's worktree and branch."""

    async def body(engine: Engine) -> str:
        run = await engine.history.find_run(run_id)
        await engine.discard(run.id, force=force)
        return f"discarded run {run.id}"

    click.echo(run_async(with_engine(body)))


@main.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--headless", is_flag=True, help="Print the runs' progress instead of the app.")
@one_line_errors
def demo(directory: Path | None, headless: bool) -> None:
    """Create a demo repository in DIRECTORY (default: a new temporary one), start its loops
    and open the app on it.

    Offline and without any API key: the agents are replays, the checks are real.
    """
    from looptui.demo import create_demo_repository, run_demo

    path = create_demo_repository(directory)
    click.echo(f"demo repository: {path}")
    os.chdir(path)
    if headless:
        run_async(with_engine(run_demo, with_config=True))
        click.echo(f"\nexplore it: cd {path} && looptui")
        return
    config = load_config(path / CONFIG_NAME)
    open_app(path, sorted(config.loops))
    click.echo(f"the demo repository stays in {path}; open it again with: cd {path} && looptui")
