"""Commands that see and steer the loops that run themselves: loops, fire, pause, unpause,
firings. Triggers fire in the service; `loops` and `firings` only read, so they do not start
one (they say when none runs, since then nothing fires)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
import msgspec

from looptui.cli.common import one_line_errors, run_async, with_engine, with_supervisor
from looptui.cli.group import main
from looptui.client.api import Supervisor
from looptui.engine import Engine
from looptui.engine.store.ledger import Firing
from looptui.engine.triggers.wording import (
    NOT_SCHEDULED,
    UNDONE,
    firing_line,
    loop_line,
    outcome_text,
    when,
)
from looptui.service.endpoint import ServiceError

T = TypeVar("T")


async def _read(body: Callable[[Supervisor], Awaitable[T]]) -> T:
    """`body` against the service when it runs, else against the store in this process."""
    try:
        return await with_supervisor(body, start=False)
    except ServiceError:
        return await with_engine(body, with_config=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the loops as JSON.")
@one_line_errors
def loops(as_json: bool) -> None:
    """List each loop with its triggers, their next fire times, and its last firings."""
    states = run_async(_read(lambda supervisor: supervisor.loops()))
    scheduled = any(state.scheduled for state in states)
    if as_json:
        record = {"scheduled": scheduled, "loops": msgspec.to_builtins(states)}
        click.echo(json.dumps(record, indent=2))
        return
    if not states:
        click.echo("no loops configured (looptui.toml has no [loops.NAME] table)")
        return
    if not scheduled and any(state.triggers for state in states):
        click.echo(f"looptui: {NOT_SCHEDULED}", err=True)
    now = time.time()
    for state in states:
        click.echo(loop_line(state))
        for trigger in state.triggers:
            click.echo(f"  {trigger.name:<12} {trigger.description:<40} {when(trigger, now)}")
        for firing in state.firings:
            click.echo(f"    {firing_line(firing)}")


@main.command()
@click.argument("loop")
@one_line_errors
def fire(loop: str) -> None:
    """Fire LOOP now, as one of its triggers would: its policy and its `when` commands
    decide, and the ledger records what became of it.

    Exits 0 when a run started, is starting or waits its turn, or there was nothing to do;
    1 when the firing was skipped or its run could not start."""

    async def body(supervisor: Supervisor) -> Firing:
        firing = await supervisor.fire(loop)
        click.echo(_fired_line(firing))
        if isinstance(supervisor, Engine) and firing.run_id:  # no service: the run is ours
            click.echo("looptui: no service: this command drives the run until it ends", err=True)
            run = await supervisor.wait(firing.run_id)
            click.echo(f"run {run.id} {run.status}" + (f": {run.error}" if run.error else ""))
        return firing

    firing = run_async(with_supervisor(body, with_config=True, loop=loop))
    if firing.outcome in UNDONE:
        raise SystemExit(1)


@main.command()
@click.argument("loop")
@click.argument("trigger", required=False)
@one_line_errors
def pause(loop: str, trigger: str | None) -> None:
    """Pause LOOP's TRIGGER, or all its triggers: they fire no more until unpaused."""
    names = run_async(
        with_supervisor(lambda s: s.pause(loop, trigger), with_config=True, loop=loop)
    )
    click.echo(f"paused {loop}: {', '.join(names)}")


@main.command()
@click.argument("loop")
@click.argument("trigger", required=False)
@one_line_errors
def unpause(loop: str, trigger: str | None) -> None:
    """Resume LOOP's paused TRIGGER, or all its triggers; a time trigger is scheduled
    from now (what fell due while it was paused does not run)."""
    names = run_async(
        with_supervisor(lambda s: s.unpause(loop, trigger), with_config=True, loop=loop)
    )
    click.echo(f"unpaused {loop}: {', '.join(names)}")


@main.command()
@click.argument("loop", required=False)
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print the firings as JSON.")
@one_line_errors
def firings(loop: str | None, limit: int, as_json: bool) -> None:
    """The ledger: every firing of LOOP (or of all loops), newest first, with its time, its
    trigger, what it carried, and what became of it."""
    found = run_async(_read(lambda supervisor: supervisor.firing_history(loop, limit)))
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(found), indent=2))
        return
    if not found:
        click.echo("no firings yet" + (f" of {loop}" if loop else ""))
        return
    for firing in found:
        click.echo(firing_line(firing, with_loop=loop is None))


def _fired_line(firing: Firing) -> str:
    what = outcome_text(firing)
    follow = f" (follow it: looptui attach {firing.run_id})" if firing.run_id else ""
    return f"fired {firing.loop} (firing #{firing.id}): {what}{follow}"
