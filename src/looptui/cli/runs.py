"""Commands that start and follow runs: run, attach, stop, resume, feedback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import NoReturn

import click
from rich.console import Console
from rich.text import Text

from looptui.cli.common import (
    EXIT_FOR_STATUS,
    PRINT_BACKLOG,
    QUICK_FLUSH,
    one_line_errors,
    run_async,
    with_supervisor,
)
from looptui.cli.group import main
from looptui.client.api import Supervisor
from looptui.console import make_console, render_event
from looptui.engine import Engine, RunStatus
from looptui.engine.errors import LooptuiError
from looptui.engine.models import Run, local_clock
from looptui.engine.process import kill_process_groups
from looptui.engine.store.feed import Feed
from looptui.protocol.events import EventKind, StatusChanged
from looptui.words import counted

ATTACH_HISTORY = 50  # events of a run shown before its live ones, by attach and run
DRAIN_TIMEOUT = 10.0  # seconds to print a finished run's last events


@main.command(name="run")
@click.argument("loop")
@click.option("--prompt", help="Use this prompt instead of the loop's own.")
@click.option(
    "--detach", is_flag=True, help="Print the run's id and return; the service drives the run."
)
@one_line_errors
def run_command(loop: str, prompt: str | None, detach: bool) -> None:
    """Run LOOP until its goal holds or its budget runs out, printing what it does.

    Exits 0 only when the goal was met; 1 when the run failed or stalled; 130 when cancelled.
    Ctrl-C stops the run (its worktree is kept). With --detach, prints the run's id and
    returns at once: follow it with `looptui attach RUN`.
    """
    if detach:
        click.echo(
            run_async(
                with_supervisor(lambda sup: _detach(sup, loop, prompt), with_config=True, loop=loop)
            )
        )
        return
    status = run_async(
        with_supervisor(lambda sup: _run(sup, loop, prompt), with_config=True, loop=loop)
    )
    sys.exit(EXIT_FOR_STATUS.get(status, 1))


async def _detach(supervisor: Supervisor, loop: str, prompt: str | None) -> str:
    if supervisor.service is None:
        raise LooptuiError(
            "--detach needs the service: without it (--no-service, settings.service = false) "
            "a run ends with the command that started it"
        )
    run = await supervisor.start_run(loop, prompt)
    click.echo(
        f"run {run.id} of loop {run.loop} goes on in the service (pid {supervisor.service.pid}); "
        f"follow it: looptui attach {run.id}",
        err=True,
    )
    return run.id


async def _run(supervisor: Supervisor, loop: str, prompt: str | None) -> RunStatus:
    console = make_console()
    # Ctrl-C from here on stops the run (recorded as cancelled) instead of cancelling
    # `start_run` half-way through; a second one exits at once.
    with _signals(supervisor) as stopped:
        run = await supervisor.start_run(loop, prompt)
        stopped.run_id = run.id
        console.print(
            Text.assemble(
                ("run ", "bold"),
                (run.id, "bold"),
                " of loop ",
                (run.loop, "bold"),
                f" on branch {run.branch}\n  worktree {run.worktree}",
            )
        )
        final = await _follow(supervisor, run, console, stopped, stop_on_signal=True)
    await _summary(supervisor, final, console)
    return final.status


@main.command()
@click.argument("run_id", metavar="RUN")
@one_line_errors
def attach(run_id: str) -> None:
    """Follow RUN live until it ends (its recent events first). Ctrl-C detaches: the run
    goes on. Exits as `looptui run` would when the run ends."""

    async def body(supervisor: Supervisor) -> RunStatus | None:
        console = make_console()
        run = await supervisor.history.find_run(run_id)
        with _signals(supervisor) as stopped:
            final = await _follow(supervisor, run, console, stopped, stop_on_signal=False)
        if stopped.is_set() and final.status.is_active:
            console.print(f"[magenta]detached: run {final.id} goes on[/]")
            return None
        await _summary(supervisor, final, console)
        return final.status

    status = run_async(with_supervisor(body, run=run_id))
    sys.exit(0 if status is None else EXIT_FOR_STATUS.get(status, 1))


@main.command()
@click.argument("run_id", metavar="RUN")
@one_line_errors
def stop(run_id: str) -> None:
    """Stop RUN: its agent and checks end, its worktree and everything it did are kept."""

    async def body(supervisor: Supervisor) -> str:
        run = await supervisor.stop(run_id)
        return f"stopped run {run.id} ({run.status}); resume it with: looptui resume {run.id}"

    click.echo(run_async(with_supervisor(body, run=run_id)))


@main.command()
@click.argument("run_id", metavar="RUN")
@one_line_errors
def resume(run_id: str) -> None:
    """Continue RUN (interrupted, cancelled or paused) in its worktree, from its agent's
    session: the iteration it was cut short in runs again."""
    _continue(run_id, lambda supervisor: supervisor.resume(run_id), "resumed", redo_cut=True)


@main.command()
@click.argument("run_id", metavar="RUN")
@click.argument("text")
@one_line_errors
def feedback(run_id: str, text: str) -> None:
    """Give RUN your feedback, as a review comment does: it leads the next iteration's
    prompt, and the run goes on for up to its loop's max_iterations more."""
    _continue(run_id, lambda supervisor: supervisor.feedback(run_id, text), "continued")


def _continue(
    run_id: str,
    action: Callable[[Supervisor], Awaitable[Run]],
    verb: str,
    redo_cut: bool = False,
) -> None:
    """Resume or give feedback: the service drives the run on; without the service this
    command follows it to its end (the run cannot outlive it). `redo_cut`: an iteration cut
    short runs again (resume), rather than the next one (feedback)."""

    async def body(supervisor: Supervisor) -> RunStatus | None:
        console = make_console()
        with _signals(supervisor) as stopped:
            # read before the action: once the run goes on, its iterations change
            before = await supervisor.history.find_run(run_id)
            iterations = await supervisor.history.iterations(before.id)
            cut = redo_cut and bool(iterations) and iterations[-1].finished_at is None
            number = iterations[-1].number if cut else before.iterations + 1
            run = await action(supervisor)
            stopped.run_id = run.id
            console.print(f"{verb} run {run.id} at iteration {number} of {run.max_iterations}")
            if supervisor.service is not None:
                console.print(f"follow it: looptui attach {run.id}")
                return None
            final = await _follow(supervisor, run, console, stopped, stop_on_signal=True)
        await _summary(supervisor, final, console)
        return final.status

    status = run_async(with_supervisor(body, with_config=True, run=run_id))
    if status is not None:
        sys.exit(EXIT_FOR_STATUS.get(status, 1))


class _Stop(asyncio.Event):
    """Set by the first Ctrl-C (or SIGTERM); `run_id` is the run it stops, once known."""

    run_id: str | None = None


@contextlib.contextmanager
def _signals(supervisor: Supervisor) -> Iterator[_Stop]:
    """A `_Stop` set by the first Ctrl-C (or SIGTERM); a second one exits at once."""
    stopped = _Stop()
    event_loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stopped.is_set():
            _exit_now(supervisor, stopped.run_id)
        stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        event_loop.add_signal_handler(sig, on_signal)
    try:
        yield stopped
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            event_loop.remove_signal_handler(sig)


async def _follow(
    supervisor: Supervisor,
    run: Run,
    console: Console,
    stopped: asyncio.Event,
    *,
    stop_on_signal: bool,
) -> Run:
    """Print the run's events until it ends (the ones stored so far first); return its
    final record. A signal stops the run (`stop_on_signal`) or just stops following."""
    recent = await supervisor.history.events(run.id, limit=ATTACH_HISTORY)
    after = (recent[0].id or 1) - 1 if recent else 0
    feed = supervisor.subscribe(run.id, after)
    printed = _Printed()
    printer = asyncio.create_task(_print_events(feed, console, stopped.set, printed))
    finished = asyncio.create_task(supervisor.wait(run.id))
    stop_requested = asyncio.create_task(stopped.wait())
    try:
        await asyncio.wait({finished, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if stopped.is_set() and not finished.done():
            if not stop_on_signal:
                finished.cancel()
                return await supervisor.history.run(run.id)
            console.print(
                "[magenta]stopping: the agent is stopped, the worktree is kept "
                "(Ctrl-C again to quit at once)[/]"
            )
            await supervisor.stop(run.id)
        final = await finished
        # the run's last event is stored before `wait` returns: print up to it
        last = await supervisor.history.events(run.id, limit=1)
        if last and last[-1].id is not None and printed.last < last[-1].id:
            printed.target = last[-1].id
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(printed.reached), DRAIN_TIMEOUT)
        return final
    finally:
        stop_requested.cancel()
        finished.cancel()
        feed.close()
        printer.cancel()
        await asyncio.gather(printer, finished, stop_requested, return_exceptions=True)


async def _summary(supervisor: Supervisor, final: Run, console: Console) -> None:
    console.print(
        Text.assemble(
            f"run {final.id}: ",
            (final.status.value, "bold"),
            f" after {counted(final.iterations, 'iteration')}",
            f" — {final.error}" if final.error else "",
        )
    )
    if final.status is RunStatus.DEFERRED and final.retry_at is not None:
        when = local_clock(final.retry_at)
        if supervisor.service is None:  # no service to wake it: the user does
            console.print(f"it may resume at {when} (local): looptui resume {final.id}")
        else:
            console.print(f"the service resumes it at {when} (local)")
    if final.status is RunStatus.SUCCEEDED:
        console.print(
            f"review it: looptui diff {final.id}; land it: looptui merge {final.id} [--squash]"
        )
        config = supervisor.config
        if (
            config is not None
            and final.loop in config.loops
            and config.loop(final.loop).evaluator is None
        ):
            console.print(
                "judged by its checks alone: no evaluator read the change, so code that only "
                "special-cases the tests' inputs would pass too (give the loop an evaluator)"
            )
    verdicts = await supervisor.history.verdicts(final.id)
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


def _exit_now(supervisor: Supervisor, run_id: str | None) -> None:
    """The second Ctrl-C: exit at once; the worktree is kept. Without the service, the
    agent and checks are this process's children: they are killed, and the run is recorded
    as cancelled within a moment. A service goes on stopping the run by itself."""
    if not isinstance(supervisor, Engine):
        with contextlib.suppress(Exception, SystemExit):
            print("quitting now: the service is stopping the run; the worktree is kept")
        _hard_exit()
    engine = supervisor
    kill_process_groups()
    with contextlib.suppress(Exception, SystemExit):
        print("quitting now: the agent was killed, the worktree is kept")

    async def last_words() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(QUICK_FLUSH):
                if run_id is not None:
                    await engine.store.update_run(
                        run_id,
                        status=RunStatus.CANCELLED,
                        finished_at=time.time(),
                        error="cancelled: looptui quit at once on a second Ctrl-C",
                    )
                    engine.store.emit(run_id, StatusChanged(RunStatus.CANCELLED, "cancelled"))
                await engine.store.flush()
        _hard_exit()

    event_loop = asyncio.get_running_loop()
    _pending_exit.add(event_loop.create_task(last_words()))
    event_loop.call_later(QUICK_FLUSH + 0.5, _hard_exit)  # whatever the flush is stuck on


_pending_exit: set[asyncio.Task[None]] = set()


def _hard_exit() -> NoReturn:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(EXIT_FOR_STATUS[RunStatus.CANCELLED])


class _Printed:
    """How far the printer got, and the event it must reach before the command ends."""

    def __init__(self) -> None:
        self.last = 0
        self.target: int | None = None
        self.reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def saw(self, event_id: int | None) -> None:
        self.last = max(self.last, event_id or 0)
        if self.target is not None and self.last >= self.target and not self.reached.done():
            self.reached.set_result(None)


async def _print_events(
    subscription: Feed,
    console: Console,
    on_closed_output: Callable[[], None],
    printed: _Printed | None = None,
) -> None:
    """Print a run's events as they come, a batch at a time; when the terminal falls behind
    by more than PRINT_BACKLOG events, output lines are counted instead of printed."""
    skipped = 0
    try:
        while (batch := await subscription.next_batch()) is not None:
            behind = len(batch) + subscription.backlog > PRINT_BACKLOG
            lines: list[Text] = []
            for event in batch:
                status = event.payload
                # the summary line says how it ended; an interruption is shown, as it is why
                # the iteration that follows starts again
                if isinstance(status, StatusChanged) and status.status is not RunStatus.INTERRUPTED:
                    continue
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
            if printed is not None:
                printed.saw(batch[-1].id)
    except SystemExit:
        # rich's answer to a closed stdout (`looptui run | head`): stdout now goes to
        # /dev/null. Raised out of this task it would tear the event loop down mid-run and
        # hang; instead nobody is watching any more, so the run is stopped like on Ctrl-C.
        on_closed_output()


def _skipped_line(count: int, run_id: str) -> Text:
    return Text(
        f"  … {counted(count, 'line')} of output not shown: the terminal fell behind "
        f"(`looptui log {run_id}` has them)",
        style="dim",
    )
