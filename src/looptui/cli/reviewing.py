"""`looptui review`: scripted review of a run, unit by unit or line by line, kept in the
store for `looptui merge` (or `--merge`) to land exactly."""

from __future__ import annotations

from collections.abc import Collection

import click

from looptui.cli.common import one_line_errors, run_async, with_engine, with_supervisor
from looptui.cli.group import main
from looptui.client.api import Supervisor
from looptui.engine import Engine
from looptui.engine.errors import LooptuiError
from looptui.engine.landing import debt_line, landing_line, reviewed_line
from looptui.engine.models import Run, RunStatus
from looptui.engine.review_specs import apply_spec, parse_spec
from looptui.engine.workspace import Decision, FilePatch, Hunk, HunkKey, Selection

MARKS = {Decision.ACCEPTED: "✔", Decision.REJECTED: "✘", Decision.UNDECIDED: "·"}


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--accept",
    "accepts",
    multiple=True,
    metavar="FILE[:HUNK][:LINES]",
    help="Accept a file, one of its hunks (from 1), or lines of a hunk (3,5-7). Repeatable.",
)
@click.option(
    "--reject",
    "rejects",
    multiple=True,
    metavar="FILE[:HUNK][:LINES]",
    help="Leave out a file, a hunk, or lines of a hunk (a removed line is kept). Repeatable.",
)
@click.option("--reset", is_flag=True, help="Take back every decision first.")
@click.option("--show", is_flag=True, help="Print each hunk's lines, numbered for LINES.")
@click.option("--merge", "then_merge", is_flag=True, help="Then merge what lands.")
@click.option("--squash", is_flag=True, help="With --merge: land the work as one commit.")
@click.option("--force", is_flag=True, help="With --merge: even if its last verdict is not done.")
@one_line_errors
def review(
    run_id: str,
    accepts: tuple[str, ...],
    rejects: tuple[str, ...],
    reset: bool,
    show: bool,
    then_merge: bool,
    squash: bool,
    force: bool,
) -> None:
    """Decide RUN's changes from a script and print what a merge would land.

    Decisions are kept (with those taken before) until `looptui merge RUN` lands exactly
    them; undecided hunks land as accepted. The narrower wins: files are decided first, then
    hunks, then lines (`--reject a.py --accept a.py:2` takes only the second hunk). A
    merged or discarded run shows what it changed, and takes no decision.
    """
    given = [(text, Decision.ACCEPTED) for text in accepts]
    given += [(text, Decision.REJECTED) for text in rejects]
    deciding = [
        option
        for option, used in (
            ("--accept", accepts),
            ("--reject", rejects),
            ("--reset", reset),
            ("--merge", then_merge),
        )
        if used
    ]

    async def decide(engine: Engine) -> tuple[str, str]:
        run = await engine.history.find_run(run_id)
        if not run.status.has_workspace:  # its review is over: nothing left to decide
            if deciding:
                raise LooptuiError(
                    f"run {run.id} is already {run.status}; {' and '.join(deciding)} "
                    "cannot change it now (--show shows its diff)"
                )
            selection = await engine.kept_selection(run.id)
            return run.id, "\n".join(_closed_report(run, selection, show))
        # what the review screen showed is kept as it was: scripted decisions show nothing
        selection, shown = await engine.kept_review(run.id)
        if reset:
            selection.decide_all(Decision.UNDECIDED)
        specs = [(parse_spec(selection.patch, text), decision) for text, decision in given]
        # every spec is checked before any is applied; the narrower ones last, so they win
        for spec, decision in sorted(specs, key=lambda item: item[0].narrowness):
            apply_spec(selection, spec, decision)
        if specs or reset:
            await engine.save_review(run.id, selection, shown)
        return run.id, "\n".join(_report(selection, shown, show))

    found, report = run_async(with_engine(decide))
    click.echo(report)
    if then_merge:

        async def land(supervisor: Supervisor) -> str:
            commit = await supervisor.merge(found, squash=squash, force=force)
            run = await supervisor.history.find_run(found)
            return f"merged run {run.id} into {run.base_branch} as {commit[:10]}" + (
                " (squashed)" if squash else ""
            )

        click.echo(run_async(with_supervisor(land, run=found)))


def _report(selection: Selection, shown: Collection[HunkKey], show: bool) -> list[str]:
    """Each unit with its decision (and its numbered lines with `show`), then what lands and
    how much of it would land unread (`shown`: the units the review screen showed)."""
    counts, tally = selection.counts(), selection.tally(shown)
    return [*_units(selection, show, decided=True), landing_line(counts), debt_line(tally)]


def _closed_report(run: Run, selection: Selection, show: bool) -> list[str]:
    """A merged or discarded run: what it changed, unit by unit, and that nothing of it is
    left to decide or land (no "would land" line: nothing will)."""
    if run.status is RunStatus.MERGED:
        state = f"run {run.id} is merged into {run.base_branch}"
        if run.review is not None:
            state += f" ({reviewed_line(run.review)})"
        state, shown = f"{state}; nothing is left to decide or merge", "What landed:"
    else:
        state = f"run {run.id} is discarded; none of it landed and nothing is left to decide"
        shown = "What it changed:"
    if not selection.patch.files:
        return [state]
    return [f"{state}. {shown}", *_units(selection, show, decided=False)]


def _units(selection: Selection, show: bool, decided: bool) -> list[str]:
    """Each file and its units, numbered for FILE:HUNK, with their decisions when `decided`
    (and with `show`, each hunk's lines numbered for LINES)."""
    lines: list[str] = []
    for file in selection.patch.files:
        lines.append(f"{file.path} ({file.status.value}, +{file.added} −{file.removed})")
        for number, key in enumerate(file.keys, 1):
            hunk = _hunk_of(file, key)
            lines.append(_unit_line(selection, key, hunk, number, decided))
            if show and hunk is not None:
                rejected = selection.rejected_lines(key) if decided else frozenset()
                for position, line in enumerate(hunk.lines):
                    mark = "✘" if position in rejected else " "
                    lines.append(f"      {position + 1:>4} {mark} {line.kind.value}{line.text}")
    return lines


def _hunk_of(file: FilePatch, key: HunkKey) -> Hunk | None:
    return next((hunk for hunk in file.hunks if hunk.key == key and file.split), None)


def _unit_line(
    selection: Selection, key: HunkKey, hunk: Hunk | None, number: int, decided: bool = True
) -> str:
    decision = selection.decision(key)
    what = hunk.header if hunk is not None else "whole file"
    if hunk is None and any(h.key != key for h in selection.patch.files_of(key)[0].hunks):
        what = "rename or mode change"
    size = f"  +{hunk.added} −{hunk.removed}" if hunk is not None else ""
    if not decided:
        return f"    {number}: {what}{size}"
    state = decision.value
    rejected = selection.rejected_lines(key) if hunk is not None else frozenset()
    if rejected and decision is Decision.ACCEPTED:
        numbers = ",".join(str(index + 1) for index in sorted(rejected))
        state += f", but lines {numbers} rejected"
    return f"  {MARKS[decision]} {number}: {what}{size}  {state}"
