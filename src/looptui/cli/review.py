"""Commands that show runs and land or drop their work: status, log, diff, merge, discard."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import click
from rich.text import Text

from looptui.cli.common import (
    LOG_PAGE,
    one_line_errors,
    run_async,
    with_engine,
    with_supervisor,
)
from looptui.cli.group import main
from looptui.client.api import Supervisor
from looptui.client.connect import VersionMismatch, open_supervisor, use_service
from looptui.console import (
    clean,
    make_console,
    prompts_text,
    render_event,
    run_to_json,
    runs_table,
)
from looptui.engine import Engine
from looptui.engine.config import CONFIG_NAME, load_config
from looptui.engine.errors import LooptuiError
from looptui.engine.landing import plural, reviewed_line
from looptui.engine.models import ReviewTally, Run, RunStatus
from looptui.engine.store.records import CRASHED
from looptui.engine.workspace import Repository
from looptui.service.daemon import Place, start_detached
from looptui.service.endpoint import ServiceError
from looptui.words import counted


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@one_line_errors
def status(as_json: bool) -> None:
    """List the runs of this repository, marking those its service is driving now."""

    async def body(engine: Engine) -> None:
        driven, service_line = await _driven_runs()  # first: a run ending meanwhile is not
        runs = await engine.history.runs()
        driven = {run.id: driven[run.id] for run in runs if run.id in driven}
        started = await _start_for_crashed(runs)
        if as_json:
            verdicts = await engine.history.latest_verdicts()
            payload = [run_to_json(run, verdicts.get(run.id), run.id in driven) for run in runs]
            click.echo(json.dumps(payload, indent=2))
            if started:
                click.echo(started, err=True)
            return
        if not runs:
            click.echo("no runs yet; start one with `looptui run LOOP`")
        else:
            make_console().print(runs_table(runs, driven))
            for line in unread_by_loop(runs):
                click.echo(line)
        click.echo(started or service_line)

    run_async(with_engine(body))


def unread_by_loop(runs: list[Run]) -> list[str]:
    """Per loop, how much of its merged code review covered: the understanding debt."""
    totals: dict[str, ReviewTally] = {}
    for run in runs:
        if run.review is not None:
            totals[run.loop] = totals.get(run.loop, ReviewTally()) + run.review
    return [
        f"loop {loop}: {plural(tally.lines, 'changed line')} in its merged runs (landed or "
        f"left out), {tally.unread_lines} of them undecided and never under the review cursor "
        f"({reviewed_line(tally)})"
        for loop, tally in sorted(totals.items())
    ]


async def _start_for_crashed(runs: list[Run]) -> str | None:
    """After a crash, the next client starts the service, and the service resumes the runs
    the crash interrupted whose loop says `on_interrupt = "resume"`: `status` is such a
    client. Runs interrupted by a deliberate `looptui service stop` wait for the next start.
    Returns what to tell the user, or None when nothing was started."""
    crashed = [run for run in runs if run.status is RunStatus.INTERRUPTED and run.error == CRASHED]
    if not crashed:
        return None
    root = await asyncio.to_thread(lambda: Repository(Path.cwd()).root)
    try:
        config = await asyncio.to_thread(load_config, root / CONFIG_NAME)
    except LooptuiError:  # a broken config: the service could not start either
        return None
    if not use_service(config, False, os.environ):
        return None
    # without its worktree a run cannot go on (it says so when it is resumed)
    kept = await asyncio.to_thread(lambda: {r.id for r in crashed if Path(r.worktree).is_dir()})
    waiting = [
        run.id
        for run in crashed
        if run.id in kept
        and run.loop in config.loops
        and config.loop(run.loop).on_interrupt == "resume"
        and run.resumes < config.loop(run.loop).max_resumes
    ]
    if not waiting:
        return None
    try:
        place = await asyncio.to_thread(Place.of, root, os.environ)
        if await asyncio.to_thread(place.running) is not None:
            return None  # one runs (it did not resume them, and said why in their events)
        pid = await asyncio.to_thread(start_detached, root, os.environ)
    except (ServiceError, OSError) as exc:
        return f"the looptui service could not be started to resume {', '.join(waiting)}: {exc}"
    count = f"{len(waiting)} run{'s' if len(waiting) != 1 else ''}"
    return (
        f"started the looptui service (pid {pid}): it resumes {count} a crash interrupted: "
        + ", ".join(waiting)
    )


async def _driven_runs() -> tuple[dict[str, int], str]:
    """The runs the repository's service drives now (run id -> the service's pid) and a
    line saying so. Only a running service is asked: none is started for this."""
    try:
        place = await asyncio.to_thread(Place.of, Path.cwd(), os.environ)
        pid = await asyncio.to_thread(place.running)
        if pid is None:
            return {}, "no looptui service runs for this repository: no run is driven now"
        supervisor = await open_supervisor(Path.cwd(), os.environ, None, start=False)
    except VersionMismatch as mismatch:  # it still says which runs it drives
        info = mismatch.info
        return dict.fromkeys(info.active_runs, info.pid), f"looptui: {mismatch}"
    except (ServiceError, OSError) as exc:
        return {}, f"the looptui service could not be asked which runs it drives: {exc}"
    try:
        active = await supervisor.active_runs()
        if supervisor.service is not None:
            pid = supervisor.service.pid
    except (ServiceError, OSError) as exc:
        return {}, f"the looptui service could not be asked which runs it drives: {exc}"
    finally:
        await supervisor.close()
    runs = counted(len(active), "run") if active else "no run"
    line = f"the looptui service (pid {pid}) is driving {runs}"
    return dict.fromkeys(active, pid), line


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--prompts",
    is_flag=True,
    help="Print only the prompt each iteration was given (and any system text sent with it).",
)
@one_line_errors
def log(run_id: str, prompts: bool) -> None:
    """Show everything RUN did: agent output, commits, checks, verdicts and notes."""

    async def body(engine: Engine) -> None:
        run = await engine.history.find_run(run_id)
        if prompts:
            iterations = await engine.history.iterations(run.id)
            if not iterations:
                click.echo(f"run {run.id} has no iteration yet", err=True)
            click.echo(prompts_text(iterations), nl=False)
            return
        console = make_console()
        console.print(
            Text.assemble(
                ("run ", "bold"),
                (run.id, "bold"),
                f" loop {run.loop} agent {run.agent}: ",
                (run.status.value, "bold"),
                f" after {run.iterations}/{counted(run.max_iterations, 'iteration')}",
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

    async def body(supervisor: Supervisor) -> str:
        run = await supervisor.history.find_run(run_id)
        commit = await supervisor.merge(run.id, squash=squash, force=force)
        return f"merged run {run.id} into {run.base_branch} as {commit[:10]}" + (
            " (squashed)" if squash else ""
        )

    click.echo(run_async(with_supervisor(body, run=run_id)))


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("--force", is_flag=True, help="Discard even work that was never merged.")
@one_line_errors
def discard(run_id: str, force: bool) -> None:
    """Remove RUN's worktree and branch."""

    async def body(supervisor: Supervisor) -> str:
        run = await supervisor.history.find_run(run_id)
        await supervisor.discard(run.id, force=force)
        return f"discarded run {run.id}"

    click.echo(run_async(with_supervisor(body, run=run_id)))
