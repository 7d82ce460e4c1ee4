"""The worktree at hand: a run's file in the user's editor, a shell in its worktree, its path
on the clipboard, and discarding it, from the screens that show or select one run.

The editor and the shell take the terminal over while the app is suspended, Textual's way.
They run as child processes awaited on the app's loop rather than blocking it, so runs
driven in this window go on meanwhile; the app's repaints are held back until it has the
terminal again. Commands are argv lists: no path or variable ever goes through a shell.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from textual import work
from textual.app import App, SuspendNotSupported
from textual.binding import Binding
from textual.screen import Screen

from looptui.client.api import Supervisor
from looptui.engine import LooptuiError
from looptui.engine.models import Run

# Editors that take `-g path:line` (VS Code and its forks); every other one `+LINE path`,
# which vi, vim, neovim, emacs, nano, micro, kakoune and joe all read.
GOTO_EDITORS = frozenset({"code", "code-insiders", "codium", "vscodium", "cursor", "windsurf"})

# out of the footers, full at 80 columns already: `?` and the palette list them
SHELL_BINDING = Binding(
    "exclamation_mark", "shell", "Shell", tooltip="A shell in the run's worktree", show=False
)
COPY_BINDING = Binding(
    "y", "copy_path", "Copy path", tooltip="Copy the path of the run's worktree", show=False
)
EDIT_BINDING = Binding(
    "o", "edit", "Open in editor", tooltip="Open this file in $EDITOR at this line", show=False
)
WORKTREE_BINDINGS = (SHELL_BINDING, COPY_BINDING)


def editor_command(environ: Mapping[str, str]) -> list[str]:
    """The user's editor as argv: $VISUAL, else $EDITOR (as git reads them), else vi. The
    variable may hold arguments ("code --wait"): split as a shell would, never run by one."""
    value = environ.get("VISUAL") or environ.get("EDITOR") or "vi"
    try:
        command = shlex.split(value)
    except ValueError as exc:
        raise LooptuiError(f"cannot read $EDITOR {value!r}: {exc}") from None
    if not command:
        raise LooptuiError("$EDITOR is blank: set it to an editor, e.g. EDITOR=vi")
    return command


def editor_argv(command: list[str], path: Path, line: int) -> list[str]:
    """Open `path` at `line` with this editor command, in the form the editor reads."""
    name = Path(command[0]).name.lower().removesuffix(".exe")
    if name in GOTO_EDITORS:
        return [*command, "-g", f"{path}:{line}"]
    return [*command, f"+{line}", str(path)]


def shell_argv(environ: Mapping[str, str]) -> list[str]:
    """The user's shell ($SHELL is a program's path, taken whole), else /bin/sh."""
    return [environ.get("SHELL") or "/bin/sh"]


def worktree_of(run: Run) -> Path:
    """The run's worktree, or a one-line error saying why there is none."""
    path = Path(run.worktree)
    if not run.status.has_workspace:
        raise LooptuiError(f"run {run.id} is {run.status.value}: its worktree and branch are gone")
    if not path.is_dir():
        raise LooptuiError(f"run {run.id} has no worktree at {path}")
    return path


def file_in(worktree: Path, relative: str) -> Path:
    """`relative` inside `worktree`, refused if it would lead out of it (a symlink, `..`)."""
    path = (worktree / relative).resolve()
    if not path.is_relative_to(worktree.resolve()):
        raise LooptuiError(f"{relative} is outside the run's worktree")
    if not path.is_file():
        raise LooptuiError(f"{relative} is not in the worktree (deleted by the run?)")
    return path


async def run_suspended(app: App[object], argv: list[str], cwd: Path, say: str = "") -> str | None:
    """Run `argv` in `cwd` with the terminal handed over to it, saying `say` there first;
    None when it exited 0, else why not, in one line."""
    failure: str | None = None
    interrupted: BaseException | None = None
    try:
        # the batch outside: the repaint that resuming asks for is drawn once it has ended
        with app.batch_update(), app.suspend():
            try:  # nothing may escape the suspension, or the app would never take the
                # terminal back
                if say and sys.__stdout__ is not None:
                    sys.__stdout__.write(f"{say}\n")
                    sys.__stdout__.flush()
                process = await asyncio.create_subprocess_exec(*argv, cwd=cwd)
                code = await process.wait()
                if code:
                    failure = f"{Path(argv[0]).name} exited with {code}"
            except OSError as exc:
                failure = f"cannot run {argv[0]}: {exc.strerror or exc}"
            except BaseException as exc:  # cancelled: take the terminal back, then go on
                interrupted = exc
    except SuspendNotSupported:
        return "this terminal cannot be handed over to another program"
    if interrupted is not None:
        raise interrupted
    return failure


class WorktreeScreen(Screen[None]):
    """A screen with a run at hand, and keys for its worktree: the screen adds to its own
    bindings those it wants (WORKTREE_BINDINGS, EDIT_BINDING) and names the run and file."""

    def run_at_hand(self) -> Run | None:
        """The run whose worktree the keys act on: the screen's own run (its `run_id`), as
        the app's board has it now; a screen of many runs (the grid) says which is selected."""
        run_id: str | None = getattr(self, "run_id", None)
        board = getattr(self.app, "board", None)
        if run_id is None or board is None:
            return None
        summary = board.summaries.get(run_id)
        return summary.run if summary is not None else None

    def file_at_hand(self) -> tuple[str, int] | None:
        """The file (relative to the worktree) and line to open, if the screen shows one."""
        return None

    def _worktree(self) -> Path | None:
        run = self.run_at_hand()
        if run is None:
            return None
        try:
            return worktree_of(run)
        except LooptuiError as exc:
            self.notify(str(exc), severity="warning")
            return None

    @work(group="worktree", exclusive=True, exit_on_error=False)
    async def action_shell(self) -> None:
        worktree = self._worktree()
        if worktree is not None:
            # the app is gone from the terminal meanwhile: how to come back to it
            hint = (
                f"looptui: a shell in the run's worktree {worktree}; `exit` comes back to looptui"
            )
            await self._launch(shell_argv(os.environ), worktree, "shell", hint)

    @work(group="worktree", exclusive=True, exit_on_error=False)
    async def action_edit(self) -> None:
        worktree, place = self._worktree(), self.file_at_hand()
        if worktree is None:
            return
        if place is None:
            self.notify("no file here to open", severity="warning")
            return
        try:
            path = file_in(worktree, place[0])
            argv = editor_argv(editor_command(os.environ), path, place[1])
        except LooptuiError as exc:
            self.notify(str(exc), title="not opened", severity="warning")
            return
        await self._launch(argv, worktree, "editor")

    async def _launch(self, argv: list[str], cwd: Path, what: str, say: str = "") -> None:
        failure = await run_suspended(self.app, argv, cwd, say)
        if failure is not None:
            self.notify(failure, title=f"{what} failed", severity="error")

    def action_copy_path(self) -> None:
        worktree = self._worktree()
        if worktree is not None:
            self.app.copy_to_clipboard(str(worktree))
            self.notify(f"copied {worktree}", title="worktree path")


async def discard(screen: Screen[None], engine: Supervisor, run: Run) -> bool:
    """Ask, then discard the run: its worktree and branch deleted. Whether it was."""
    from looptui.tui.screens.confirm import ConfirmScreen

    question = (
        f"Discard run {run.id} of {run.loop}? Its worktree and branch are deleted, "
        "with any work that was not merged."
    )
    if not await screen.app.push_screen_wait(ConfirmScreen(question, "Discard")):
        return False
    try:
        await engine.discard(run.id, force=True)
    except LooptuiError as exc:
        screen.notify(str(exc), title="not discarded", severity="error")
        return False
    screen.notify(f"{run.loop} {run.id} discarded: its worktree and branch are gone")
    return True
