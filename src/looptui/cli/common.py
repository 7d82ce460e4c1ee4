"""What every `looptui` command shares: one-line errors, the event loop, the supervisor."""

from __future__ import annotations

import asyncio
import functools
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from looptui import __version__
from looptui.client.api import Supervisor
from looptui.client.connect import open_supervisor, use_service
from looptui.engine import Engine, LooptuiError, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.errors import RunNotFound
from looptui.engine.skills import check_skills
from looptui.engine.store import Store
from looptui.engine.triggers.validate import check_triggers
from looptui.engine.workspace import Repository
from looptui.engine.workspace.locations import ensure_directory, state_home

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
        except BrokenPipeError:  # `looptui status | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit stays quiet
            sys.exit(0)
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


async def with_supervisor(
    body: Callable[[Supervisor], Awaitable[T]],
    *,
    with_config: bool = False,
    start: bool = True,
    run: str | None = None,
    loop: str | None = None,
) -> T:
    """Run `body` against this repository's supervisor: its service (started when none runs,
    unless `start` is false), or the engine in this process when the service is off
    (`--no-service`, `settings.service = false`). `with_config`: runs will start, so the
    loops' config must exist. `run`, `loop`: the command acts on that run or starts that
    loop, so an id no run has, or a loop the config lacks, is refused before a service is
    started for it."""
    repository = Repository(Path.cwd())
    repository.require_commits()
    if run is not None:
        await _require_run(repository, run)
    path = repository.root / CONFIG_NAME
    config = load_config(path) if with_config or path.exists() else None
    if loop is not None and config is not None:
        config.loop(loop)  # ConfigError, naming the loops there are
    if with_config:  # runs will start: their worktrees need the state directory
        check_triggers(config, repository)
        check_skills(config, repository.root)
        ensure_directory(repository.worktrees_dir)
    supervisor = await open_supervisor(
        repository.root,
        os.environ,
        config,
        service=use_service(config, False, os.environ),
        start=start,
    )
    for notice in getattr(supervisor, "notices", ()):
        click.echo(f"looptui: {notice}", err=True)
    try:
        if isinstance(supervisor, Engine):
            await _warn_of_orphans(supervisor)
        return await body(supervisor)
    finally:
        await supervisor.close()


async def _require_run(repository: Repository, prefix: str) -> None:
    """RunNotFound (or the ambiguity) unless `prefix` names one run of the store."""
    if not await asyncio.to_thread(repository.store_path.exists):
        raise RunNotFound(f"no run matches {prefix!r}")
    store = await Store.open(repository.store_path)
    try:
        await store.find_run(prefix)
    finally:
        await store.close()


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
