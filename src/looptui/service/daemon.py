"""`looptui serve`: the supervisor of one repository, and how it is started, found, stopped.

The service takes the repository's lock (so two racing for it leave one), opens the engine
(runs whose process died are marked interrupted and their leftover agents stopped), resumes
the runs that were going when the last service died, resumes each deferred run when its usage
limit resets (`deferrals`), then serves its socket until SIGTERM,
SIGINT or a `Shutdown` command. On the way out, runs still going are recorded as interrupted,
so that the next service resumes them: a stopped service, like a crashed one, loses nothing.

Where to find it is written to `service.json` in the repository's private directory, next to
the lock, so that every client finds the same service whatever its environment says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from looptui import __version__
from looptui.engine.config import CONFIG_NAME, Config, load_config
from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.skills import check_skills
from looptui.engine.supervisor import Engine
from looptui.engine.triggers.clock import SystemClock
from looptui.engine.triggers.validate import check_triggers
from looptui.engine.workspace import Repository
from looptui.engine.workspace.locations import ensure_directory
from looptui.protocol.commands import MAX_FRAME
from looptui.protocol.events import ErrorReported
from looptui.service.deferrals import Deferrals
from looptui.service.endpoint import (
    Endpoint,
    ServiceError,
    ServiceLock,
    bind_listener,
    clean_stale_socket,
    holder,
)
from looptui.service.scheduler import Scheduler
from looptui.service.server import Server

logger = logging.getLogger(__name__)

INFO_NAME = "service.json"
LOG_NAME = "service.log"
START_TIMEOUT = 20.0  # for a detached service to answer


@dataclass(frozen=True)
class Place:
    """Where one repository's service keeps its files."""

    repository: Repository
    endpoint: Endpoint

    @classmethod
    def of(cls, start: Path, environ: Mapping[str, str]) -> Place:
        repository = Repository(start)
        endpoint = Endpoint.for_repository(
            repository.common_dir, repository.root.name, environ, state_dir=repository.data_dir
        )
        return cls(repository, endpoint)

    @property
    def info_path(self) -> Path:
        return self.repository.data_dir / INFO_NAME

    @property
    def log_path(self) -> Path:
        return self.repository.data_dir / LOG_NAME

    def socket_path(self) -> Path:
        """The socket of the running service, as it wrote it (its environment may differ
        from the caller's), or where this caller's would be."""
        try:
            recorded = json.loads(self.info_path.read_text(encoding="utf-8"))
            return Path(recorded["socket"])
        except (OSError, ValueError, KeyError, TypeError):
            return self.endpoint.socket_path

    def running(self) -> int | None:
        """The pid of the live service holding the lock, or None."""
        return holder(self.endpoint)


def _load_config(repository: Repository) -> Config | None:
    """The repository's config, its triggers checked against the repository."""
    path = repository.root / CONFIG_NAME
    config = load_config(path) if path.exists() else None
    check_triggers(config, repository)
    check_skills(config, repository.root)
    return config


class _ConfigWatch:
    """Reloads looptui.toml when it changed, before a command that starts or lands work, and
    tells the scheduler; a broken edit keeps the last good config and says why in the
    command's error."""

    def __init__(self, engine: Engine, scheduler: Scheduler) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.path = engine.repository.root / CONFIG_NAME
        self._stamp = self._mtime()

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def __call__(self) -> None:
        stamp = self._mtime()
        if stamp == self._stamp:
            return
        config = load_config(self.path) if stamp is not None else None
        check_triggers(config, self.engine.repository)
        check_skills(config, self.engine.repository.root)
        self.engine.reconfigure(config)
        self._stamp = stamp
        self.scheduler.reconfigure()
        self.engine.warm_pool()  # a new pool_size, or loops on other base branches


async def serve(start: Path, environ: Mapping[str, str]) -> None:
    """Run the service of the repository containing `start` until it is told to stop."""
    place = Place.of(start, environ)
    repository = place.repository
    repository.require_commits()
    config = _load_config(repository)
    ensure_directory(repository.worktrees_dir)
    lock = ServiceLock(place.endpoint)
    if not lock.acquire():
        pid = place.running()
        raise ServiceError(
            f"a looptui service already runs for {repository.root}"
            + (f" (pid {pid})" if pid else "")
        )
    try:
        await _serve_locked(place, environ, config)
    finally:
        with contextlib.suppress(OSError):
            place.info_path.unlink()
        lock.release()


async def _serve_locked(place: Place, environ: Mapping[str, str], config: Config | None) -> None:
    engine = await Engine.open(place.repository.root, environ, config)
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        event_loop.add_signal_handler(sig, stop.set)
    server: Server | None = None
    scheduler = Scheduler(engine)
    engine.firings = scheduler  # `fire`, `pause` and the triggers take one path
    deferrals: Deferrals | None = None
    try:
        listener = bind_listener(place.endpoint)  # clients wait in its backlog from now on
        socket_path = str(place.endpoint.socket_path)
        server = Server(engine, socket_path, stop.set, _ConfigWatch(engine, scheduler))
        # before the first client is answered: none sees a run "interrupted" that resumes
        await resume_interrupted(engine, server)
        deferrals = Deferrals(engine, SystemClock())
        await deferrals.start()
        await scheduler.start()
        following = asyncio.create_task(_follow_config(server), name="config")
        engine.warm_pool()  # in the background: the first answer does not wait for checkouts
        unix_server = await asyncio.start_unix_server(server.handle, sock=listener, limit=MAX_FRAME)
        _write_info(place, socket_path)
        logger.info("looptui service %s serving %s", os.getpid(), socket_path)
        await stop.wait()
        following.cancel()
        unix_server.close()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            event_loop.remove_signal_handler(sig)
        if deferrals is not None:  # the runs stay deferred, for the next service
            await deferrals.stop()
        if server is not None:
            await server.close()
        await scheduler.close()  # nothing fires while the runs stop
        # runs still going resume with the next service
        await engine.close(RunStatus.INTERRUPTED)
        with contextlib.suppress(OSError):
            place.endpoint.socket_path.unlink()


CONFIG_POLL = 2.0  # seconds between looks at looptui.toml (a stat), with no command to ask


async def _follow_config(server: Server) -> None:
    """Reload looptui.toml when it changes, with no command to prompt it: a trigger added
    by editing the file fires with no window open. A broken edit is recorded once (as the
    service's error) and the last good config stays."""
    said: str | None = None
    while True:
        await asyncio.sleep(CONFIG_POLL)
        try:
            server.reload_config()
        except LooptuiError as exc:
            if str(exc) != said:
                said = str(exc)
                await server.record_error(f"looptui.toml not reloaded: {exc}")
        else:
            said = None


def _write_info(place: Place, socket_path: str) -> None:
    info = {"socket": socket_path, "pid": os.getpid(), "version": __version__}
    temporary = place.info_path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(json.dumps(info))
    os.replace(temporary, place.info_path)


async def resume_interrupted(engine: Engine, server: Server) -> list[str]:
    """Resume the interrupted runs (their process died, or the last service stopped) whose
    loop says `on_interrupt = "resume"`, each at most `max_resumes` times in a row; returns
    the ids resumed. A run that cannot resume says why in its events. (Whoever noticed first
    that the run's process was gone, this service or a command that read the store, the run
    is resumed here.)"""
    resumed = []
    for run in await engine.history.runs([RunStatus.INTERRUPTED]):
        if engine.config is None or run.loop not in engine.config.loops:
            continue
        if engine.config.loop(run.loop).on_interrupt != "resume":
            continue
        try:  # a run past its max_resumes is refused here, saying why
            await engine.resume(run.id, automatic=True)
        except LooptuiError as exc:
            message = f"not resumed after the service restarted: {exc}"
            # said once, in the run's events and the service's errors (both are stored),
            # not again at every later start of the service
            last = await engine.history.events(run.id, limit=1)
            if not last or last[-1].payload != ErrorReported(message):
                engine.store.emit(run.id, ErrorReported(message))
                await server.record_error(f"run {run.id}: {message}")
            continue
        resumed.append(run.id)
    await engine.store.flush()
    return resumed


# -- a detached service ---------------------------------------------------------------------


def start_detached(start: Path, environ: Mapping[str, str]) -> int:
    """Start the repository's service in the background (its own session, output to its
    log) and return its pid once it holds the lock and its socket answers."""
    place = Place.of(start, environ)
    place.repository.require_commits()
    clean_stale_socket(place.endpoint)
    _rotate(place.log_path)
    # the child's stdout and stderr; private, like everything in the directory
    log = os.fdopen(os.open(place.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "looptui.service",
                "serve",
                "--repo",
                str(place.repository.root),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=dict(environ),
            cwd=place.repository.root,
            start_new_session=True,  # no terminal's hangup or Ctrl-C reaches it
            close_fds=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            pid = place.running()
            if pid is not None:  # another service won the race: it is the one
                return pid
            raise ServiceError(_failure_line(place, code))
        pid = place.running()
        if pid is not None and _answers(place.socket_path()):
            return pid
        time.sleep(0.02)
    raise ServiceError(f"the looptui service did not answer within {START_TIMEOUT:g}s")


LOG_LIMIT = 10 * 1024 * 1024  # bytes of service.log before it is rotated to service.log.1


def _rotate(path: Path) -> None:
    """Keep the service's log from growing for ever: past LOG_LIMIT it becomes .log.1."""
    try:
        if path.stat().st_size > LOG_LIMIT:
            os.replace(path, path.with_name(path.name + ".1"))
    except OSError:
        pass


def _failure_line(place: Place, code: int) -> str:
    """The last line the service wrote before it exited, for the user."""
    try:
        lines = place.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    last = next((line for line in reversed(lines) if line.strip()), "")
    last = last.removeprefix("looptui: ")
    return f"the looptui service could not start (exit {code}): {last or 'no reason given'}"


def _answers(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def stop_service(start: Path, environ: Mapping[str, str], timeout: float = 30.0) -> int | None:
    """Stop the repository's service (SIGTERM: its runs resume with the next one); returns
    the pid stopped, or None when none was running."""
    place = Place.of(start, environ)
    pid = place.running()
    if pid is None:
        clean_stale_socket(place.endpoint)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if place.running() is None:
            return pid
        time.sleep(0.02)
    raise ServiceError(f"the looptui service (pid {pid}) did not stop within {timeout:g}s")
