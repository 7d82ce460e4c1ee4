"""`looptui memory`: read the memory (a loop's or a run's notes with their sources), export it,
and manage it: accept a proposed lesson, edit a note, delete one.

The service owns the store, so these go through it when it runs; otherwise (or with
`--no-service`) through the engine in this process. None of them starts a service.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import groupby
from pathlib import Path
from typing import TypeVar

import click
import msgspec

from looptui.cli.common import one_line_errors, run_async, with_engine, with_supervisor
from looptui.cli.group import main
from looptui.client.api import Supervisor
from looptui.engine import LooptuiError
from looptui.engine.config import CONFIG_NAME
from looptui.engine.models import Note, NoteKind, NoteStatus, Source, local_clock
from looptui.engine.workspace import Repository
from looptui.service.endpoint import ServiceError

T = TypeVar("T")
DETAIL_WIDTH = 160  # a source's quoted evidence, on its one line (--json has it whole)
EXIT_UNCHANGED = 1  # `memory edit` whose editor saved nothing, as `git commit` does


class _MemoryGroup(click.Group):
    """`looptui memory [LOOP|RUN]` lists; `looptui memory accept|edit|delete ...` manage.
    Anything but a subcommand's name goes to `list`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((arg for arg in args if not arg.startswith("-")), None)
        asks_help = any(arg in ("-h", "--help") for arg in args)
        if first not in self.commands and not (asks_help and first is None):
            args = ["list", *args]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[LOOP|RUN] [--json|--markdown] [--all]  |  COMMAND [ARGS]..."]


@main.group(cls=_MemoryGroup)
def memory() -> None:
    """The memory: each loop's notes with where they came from, and the lessons its runs
    proposed. `looptui memory [LOOP|RUN]` lists them (see `looptui memory list -h`);
    `accept`, `edit` and `delete` manage them. Only accepted notes reach later runs."""


@memory.command(name="list", short_help="List or export notes (the default).")
@click.argument("target", metavar="[LOOP|RUN]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the notes as JSON, whole.")
@click.option("--markdown", is_flag=True, help="Export them as a Markdown document.")
@click.option("--all", "show_all", is_flag=True, help="Every note, each checkpoint too.")
@one_line_errors
def list_notes(target: str | None, as_json: bool, markdown: bool, show_all: bool) -> None:
    """List the notes of LOOP (a loop's name) or RUN (a run id or its unique prefix), or of
    every loop, newest first: the lessons and the accepted notes, with their status, id,
    loop, run, how often they were seen and used, their text and their sources. --all adds
    every checkpoint note."""
    if as_json and markdown:
        raise LooptuiError("choose one of --json and --markdown")

    async def body(supervisor: Supervisor) -> tuple[str, list[Note]]:
        loop, run = await _target(supervisor, target)
        return supervisor.name, await supervisor.memory(loop, run)

    name, notes = run_async(_supervise(body))
    if not show_all:
        notes = [note for note in notes if _remembered(note)]
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(notes), indent=2))
    elif markdown:
        click.echo(markdown_export(name, notes, target), nl=False)
    elif not notes:
        scope = f" of {target}" if target else ""
        hint = "" if show_all else " (--all shows every checkpoint too)"
        click.echo(f"no lessons or accepted notes{scope} yet{hint}")
    else:
        for index, note in enumerate(notes):
            if index:
                click.echo()
            for line in note_lines(note):
                click.echo(line)


@memory.command(short_help="Accept notes: later runs of their loop get them.")
@click.argument("note_ids", metavar="ID...", nargs=-1, required=True)
@one_line_errors
def accept(note_ids: tuple[str, ...]) -> None:
    """Accept the notes ID... (proposed lessons, say): later runs of their loop get them."""
    numbers = _note_ids(note_ids)

    async def body(supervisor: Supervisor) -> list[Note]:
        for number in numbers:  # every id is checked before any note changes
            await supervisor.note(number)
        return [await supervisor.accept_note(number) for number in numbers]

    for note in run_async(_supervise(body)):
        click.echo(f"accepted note #{note.id} ({note.kind.value} of {note.loop or 'no loop'})")


@memory.command(short_help="Change a note's text (in $EDITOR without --text).")
@click.argument("note_id", metavar="ID")
@click.option("--text", help="The note's new text (without it, $EDITOR opens on the note).")
@one_line_errors
def edit(note_id: str, text: str | None) -> None:
    """Replace the text of note ID; without --text, edit it in $EDITOR, as `git commit`
    does. An editor that saves nothing leaves the note as it was (exit 1)."""
    (number,) = _note_ids([note_id])

    async def body(supervisor: Supervisor) -> Note | None:
        new_text = text
        if new_text is None:
            before = (await supervisor.note(number)).text
            try:
                new_text = click.edit(before + "\n", extension=".md")
            except click.ClickException as exc:  # the editor would not start, or failed
                raise LooptuiError(f"the editor failed: {exc.message}") from None
            if new_text is None or new_text.strip() == before.strip():
                return None
        return await supervisor.edit_note(number, new_text)

    note = run_async(_supervise(body))
    if note is None:
        click.echo(f"looptui: note #{number} is unchanged (the editor saved nothing new)", err=True)
        sys.exit(EXIT_UNCHANGED)
    click.echo(f"edited note #{note.id}")


@memory.command(short_help="Delete notes (asks first unless --yes).")
@click.argument("note_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
@one_line_errors
def delete(note_ids: tuple[str, ...], yes: bool) -> None:
    """Delete the notes ID...: gone from later prompts and from search. Asks first unless
    --yes (without a terminal to ask on, --yes is required)."""
    numbers = _note_ids(note_ids)
    if not yes and not sys.stdin.isatty():
        raise LooptuiError("deleting notes asks first: give --yes to delete without a terminal")

    async def body(supervisor: Supervisor) -> list[Note]:
        notes = [await supervisor.note(number) for number in numbers]
        if not yes:
            for note in notes:
                click.echo(f"#{note.id} {note.status.value} {note.kind.value}: {_first(note)}")
            count = f"{len(notes)} notes" if len(notes) > 1 else "this note"
            if not click.confirm(f"Delete {count}?", default=False):
                return []
        return [await supervisor.delete_note(number) for number in numbers]

    deleted = run_async(_supervise(body))
    if not deleted:
        click.echo("nothing deleted")
    for note in deleted:
        click.echo(f"deleted note #{note.id}")


# -- what the commands share ----------------------------------------------------------------


async def _supervise(body: Callable[[Supervisor], Awaitable[T]]) -> T:
    """`body` against the service when it runs, else against the store in this process (no
    service is started to read or change a note)."""
    started = False

    async def tracked(supervisor: Supervisor) -> T:
        nonlocal started
        started = True
        return await body(supervisor)

    try:
        return await with_supervisor(tracked, start=False)
    except ServiceError:
        if started:  # the service went away under the command: what it did is unknown
            raise
    root = Repository(Path.cwd()).root
    return await with_engine(body, with_config=(root / CONFIG_NAME).exists())


async def _target(supervisor: Supervisor, target: str | None) -> tuple[str | None, str | None]:
    """(loop, run) that TARGET names: a loop of the config, else a run (id or prefix), else a
    loop no longer configured whose notes are kept."""
    if target is None:
        return None, None
    loops = sorted(supervisor.config.loops) if supervisor.config is not None else []
    if target in loops:
        return target, None
    runs = [run.id for run in await supervisor.history.runs() if run.id.startswith(target)]
    if len(runs) == 1:
        return None, runs[0]
    if runs:  # ambiguous: the store's one line names the runs it matches
        return None, (await supervisor.history.find_run(target)).id
    try:
        await supervisor.memory(target, None)
    except LooptuiError:
        names = ", ".join(loops) or "none"
        raise LooptuiError(f"no loop or run matches {target!r} (loops: {names})") from None
    return target, None


def _note_ids(given: Iterable[str]) -> list[int]:
    """Note ids as the user wrote them ("12" or "#12"); anything else is refused."""
    numbers = []
    for text in given:
        digits = text.removeprefix("#")
        if not digits.isdigit():
            raise LooptuiError(f"{text!r} is not a note id (a number, as `looptui memory` shows)")
        numbers.append(int(digits))
    return numbers


def _remembered(note: Note) -> bool:
    """What the listing shows without --all: lessons, and notes accepted for later runs."""
    return note.kind is NoteKind.LESSON or note.status is NoteStatus.ACCEPTED


def _first(note: Note) -> str:
    lines = note.text.strip().splitlines()
    return (lines[0] if lines else "") + (" …" if len(lines) > 1 else "")


def _uses(note: Note) -> str:
    return f"seen in {note.seen} run{'s' if note.seen != 1 else ''}, used {note.uses} times"


def source_line(source: Source, width: int | None = DETAIL_WIDTH) -> str:
    """A source on one line: its kind, run, iteration and what it quotes."""
    parts = [source.kind]
    if source.run_id:
        parts.append(f"run {source.run_id}")
    if source.iteration:
        parts.append(f"iteration {source.iteration}")
    detail = " ".join(source.detail.split())
    if width is not None and len(detail) > width:
        detail = detail[: width - 1] + "…"
    return " · ".join(parts) + (f": {detail}" if detail else "")


def note_lines(note: Note) -> list[str]:
    """A note as `looptui memory` prints it: a heading line, its text, its sources."""
    where = f"run {note.run_id}" + (f" iteration {note.iteration}" if note.iteration else "")
    head = [
        f"#{note.id}",
        note.status.value,
        note.kind.value,
        f"loop {note.loop or '-'}",
        where,
        _uses(note),
        local_clock(note.created_at),
    ]
    if note.edited_at:
        head.append("edited")
    lines = ["  ".join(head)]
    lines.extend(f"    {line}" for line in note.text.splitlines())
    lines.extend(f"  source: {source_line(source)}" for source in note.sources)
    return lines


def markdown_export(repository: str, notes: Sequence[Note], target: str | None) -> str:
    """The notes as a document: a heading per loop, one per note with its status, and its
    sources as sub-bullets."""
    title = f"# Memory of {repository}" + (f" ({target})" if target else "")
    out = [title, ""]
    if not notes:
        out += ["No notes.", ""]
    by_loop = sorted(notes, key=lambda note: (note.loop, -(note.id or 0)))
    for loop, group in groupby(by_loop, key=lambda note: note.loop):
        out += [f"## Loop {loop or '(none)'}", ""]
        for note in group:
            out += [f"### Note {note.id}: {note.kind.value}, {note.status.value}", ""]
            # a paragraph per line: "Progress: …", "Tried: …" each stand on their own
            for line in note.text.splitlines():
                if line.strip():
                    out += [line.strip(), ""]
            where = f"run {note.run_id}" + (
                f", iteration {note.iteration}" if note.iteration else ""
            )
            out.append(f"- From {where}, {local_clock(note.created_at)}; {_uses(note)}")
            if note.edited_at:
                out.append(f"- Edited by the human, {local_clock(note.edited_at)}")
            if note.sources:
                out.append("- Sources:")
                out += [f"  - {source_line(source, None)}" for source in note.sources]
            out.append("")
    return "\n".join(out)
