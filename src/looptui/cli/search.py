"""`looptui search`: the stored events and notes of every run, ranked by how well they match."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import click
from rich.text import Text

from looptui.cli.common import one_line_errors, run_async, with_engine, with_supervisor
from looptui.cli.group import main
from looptui.client.api import Supervisor
from looptui.console import hit_to_json, make_console, snippet_text
from looptui.engine.models import local_clock
from looptui.engine.store.search import MAX_LIMIT, SearchHit
from looptui.service.endpoint import ServiceError

EXIT_NO_MATCH = 1  # as grep: nothing matched is not an error, but a script can tell


@main.command()
@click.argument("query")
@click.option("--loop", help="Only the runs of this loop.")
@click.option("--run", "run_id", metavar="RUN", help="Only this run (an id or its prefix).")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, MAX_LIMIT),
    help="How many hits to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the hits as a JSON list.")
@one_line_errors
def search(query: str, loop: str | None, run_id: str | None, limit: int, as_json: bool) -> None:
    """Search the output, tool calls, errors, checks, verdicts and notes of every run.

    QUERY's words must all match (in any order, any case); "quoted words" match as a phrase
    and word* as a prefix. Nothing in QUERY is search syntax: OR, NEAR or - are words.
    Prints the best hits first, each with its run, time, loop, iteration, kind and the text
    around the match. Exits 0 when something matched, 1 when nothing did (as grep does),
    2 for an empty query or an unknown run or loop.
    """

    async def body(supervisor: Supervisor) -> list[SearchHit]:
        return await supervisor.history.search(query, loop=loop, run=run_id, limit=limit)

    hits = run_async(_read(body))
    if as_json:
        click.echo(json.dumps([hit_to_json(hit) for hit in hits], indent=2))
    elif not hits:
        click.echo(f"no match for {query!r}" + "".join(_scope(loop, run_id)))
    else:
        console = make_console()
        lines = [_line(hit) for hit in hits]
        console.print(Text("\n").join(lines))
    if not hits:
        raise SystemExit(EXIT_NO_MATCH)


async def _read(body: Callable[[Supervisor], Awaitable[list[SearchHit]]]) -> list[SearchHit]:
    """`body` against the service when it runs (or the engine here, with --no-service), else
    against the store in this process: a search starts no service."""
    try:
        return await with_supervisor(body, start=False)
    except ServiceError:
        return await with_engine(body)


def _scope(loop: str | None, run_id: str | None) -> list[str]:
    return [f" in loop {loop}" if loop else "", f" in run {run_id}" if run_id else ""]


def _line(hit: SearchHit) -> Text:
    return Text.assemble(
        (hit.run_id, "bold"),
        f"  {local_clock(hit.ts):>12}  {hit.loop} #{hit.iteration}  ",
        (f"{hit.kind:<14}", "cyan" if hit.source == "event" else "magenta"),
        " ",
        snippet_text(hit),
    )
