"""The supervisor service under load, attaching to it, and restarting it (issue 10's targets).

1. Live load: N runs (default 100) of a command agent, each printing R lines a second (default
   100) for D seconds (default 30), in a write every FLOOD_TICK (as agents print in bursts; one
   write per line would cost the agents more CPU than this machine has). Every line is its own:
   the run's id, the line's number and words drawn by a generator seeded with both
   (`flood_line`), so no two runs print the same thing. The runs are driven by a real `looptui
   serve`, started the way the TUI starts it (`open_supervisor(..., service=True,
   client="tui")`). The agents start, say they are ready, and wait for one signal (a file), so
   that all of them stream over the same window. In that window the TUI (`LooptuiApp` on the
   `RemoteSupervisor`, headless, 160x50, the grid on screen) gets a key press (`l`/`h`) every
   100 ms until the agents are about to finish, each timed from the key reaching the app to the
   first frame written after the grid's cursor moved (bench/tui.py's `key_latencies`). The same
   presses on the idle app, over the same service with two finished runs, are the floor. CPU
   over the window (user + system, psutil, as fractions of one core): this process (the TUI and
   its client; no engine runs here) and the service's process (its agents and checks are not
   counted). Afterwards, with the service stopped, each run's stored stdout `OutputPrinted`
   lines are compared, in order, with what its agent printed. Targets: p99 < 25 ms, TUI < 0.5
   core, service < 1 core, every line stored.
2. Attach: a store of S runs (default 500; finished, 40 lines and a verdict each) of which one
   has L lines (default 100,000), written with the Store API (`insert_run`, `emit`, `flush`).
   Medians of K samples after a warm-up, each with a new app: connecting (`open_supervisor`
   to the running service); creating the app on the RemoteSupervisor to its first frame of the
   grid (target < 500 ms); and from Enter on the big run's card to the first frame after its
   log holds its last line, scrolled to the end (target < 300 ms). Compared in the same run with
   the same app on an in-process Engine, a bare Textual app's first frame, and raw sqlite3
   reading the lines the log shows (the last KEPT_EVENTS events of the run, JSON decoded).
3. Restart: a store of E events (default 1,000,000) over S runs (default 500), built with the
   Store API (runs inserted, events emitted in chunks, the writer paced as bench/ingest.py
   paces it) and, in the same run, with raw sqlite3 `executemany` into the store's own schema,
   committed every BATCH_SIZE rows; both clocks include making their rows. Then `looptui serve`
   is spawned K times on that store (after a warm-up), each timed from the spawn to a client's
   Hello and then ListRuns answered (target < 1 s), against a bare interpreter importing
   looptui's CLI and an in-process `Engine.open` + `runs()` on the same store.

Everything lives in one temporary directory under bench/.work/ (repositories, stores,
worktrees and their branches, sockets: XDG_STATE_HOME and XDG_RUNTIME_DIR point into it). At
the end, on Ctrl-C, SIGTERM or failure, every process started here (found by that directory in
its command line or working directory, stopped by pid: services with SIGTERM first, then
SIGKILL) is stopped, and the directory is deleted.

Run by hand: `.venv/bin/python bench/service.py [--small] [--part live|attach|restart ...]`
(`--small` to check the script at small sizes; any size flag overrides).
"""

from __future__ import annotations

import looptui.tui  # noqa: F401  (first: it sets Textual's frame rate, as the app does)

# isort: split

import argparse
import asyncio
import contextlib
import datetime
import inspect
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import textual.constants
import tomli_w
from rich.console import RenderableType
from textual import events
from textual.app import App, ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static

from looptui.client.api import Supervisor
from looptui.client.connect import _connect, open_supervisor
from looptui.client.remote import RemoteSupervisor
from looptui.engine import Engine, EventKind, load_config
from looptui.engine.agents.command import MAX_OUTPUT_LINES
from looptui.engine.config import CONFIG_NAME
from looptui.engine.models import Run, RunStatus, Verdict
from looptui.engine.store import Store
from looptui.engine.store.schema import MIGRATIONS
from looptui.engine.store.writer import BATCH_SIZE
from looptui.engine.workspace import Repository
from looptui.protocol.events import AgentSaid, AnyPayload, OutputPrinted, payload_fields
from looptui.service.daemon import Place, stop_service
from looptui.service.endpoint import ServiceError
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.run import RunScreen
from looptui.tui.settings import Settings
from looptui.tui.widgets.card_grid import CardGrid
from looptui.tui.widgets.run_log import KEPT_EVENTS, RunLog
from machine import cpu_model
from tui import key_latencies, percentile  # bench/tui.py: the same presses, timed alike

WORK = Path(__file__).resolve().parent / ".work"
MAIN = Path(__file__).resolve().parent.parent
PARTS = ("live", "attach", "restart")
FULL = {
    "runs": 100,
    "rate": 100,
    "seconds": 30.0,
    "idle_presses": 100,
    "stored_runs": 500,
    "big_lines": 100_000,
    "events": 1_000_000,
    "event_runs": 500,
    "samples": 5,
}
SMALL = {
    "runs": 10,
    "rate": 20,
    "seconds": 5.0,
    "idle_presses": 30,
    "stored_runs": 50,
    "big_lines": 10_000,
    "events": 50_000,
    "event_runs": 50,
    "samples": 3,
}
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
SIZE = (160, 50)
PRESS_INTERVAL = 0.1
FLOOD_TICK = 0.05  # seconds between an agent's writes (its lines come in chunks, as agents' do)
CHUNK = 2000  # events emitted between yields to the event loop
PACE = 10_000  # most events emitted but not yet written (the store drops lines past 20,000)
WAIT_LIMIT = 120.0  # seconds for anything awaited by polling, before the bench gives up
FLOOD_WORDS = (
    "def class return import self value result error test assert path file line build "
    "check config worktree branch commit store event agent loop iteration None True False "
    "failed passed collected running python pytest module function argument expected got"
).split()


# -- what the agents print ------------------------------------------------------------------


def flood_line(run_id: str, index: int) -> str:
    """The `index`th line run `run_id`'s agent prints: no other run or line prints it.
    (Copied into the agent's script as it is written here.)"""
    rng = random.Random(f"{run_id}:{index}")
    words = " ".join(rng.choices(FLOOD_WORDS, k=rng.randint(4, 14)))
    return f"{run_id} {index:06d} {words}"


FLOOD_MAIN = """
run_id = os.environ["LOOPTUI_RUN_ID"]
rate, count, signals = float(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
lines = [flood_line(run_id, index) + "\\n" for index in range(count)]  # made before the window
out = sys.stdout
(signals / run_id).touch()  # ready
while not (signals / "go").exists():  # every run streams over the same window
    time.sleep(0.01)
start = time.monotonic()
written = 0
while written < count:  # every TICK, the lines due by then in one write: a cheap load
    due = min(count, int((time.monotonic() - start) * rate) + 1)
    if due > written:
        out.write("".join(lines[written:due]))
        out.flush()
        written = due
    time.sleep(TICK)
"""


def flood_agent() -> str:
    """The agent's script: `flood_line` itself, and a loop printing its lines on time."""
    return (
        "import os, random, sys, time\nfrom pathlib import Path\n\n"
        f"FLOOD_WORDS = {FLOOD_WORDS!r}\nTICK = {FLOOD_TICK!r}\n\n\n"
        + inspect.getsource(flood_line)
        + FLOOD_MAIN
    )


# -- the app, timed ---------------------------------------------------------------------------


class TimedApp(LooptuiApp):
    """The real app, noting when each frame is written, and the first of the grid."""

    frames: list[float]
    first_grid: float | None

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        now = time.perf_counter()
        self.frames.append(now)
        if self.first_grid is None and type(screen).__name__ == "GridScreen":
            self.first_grid = now


def timed_app(supervisor: Supervisor, root: Path) -> TimedApp:
    app = TimedApp(supervisor, Settings(root / "settings.toml"), bell=False)
    app.frames, app.first_grid = [], None
    return app


class BareApp(App[None]):
    """A bare Textual app: the floor of any first frame."""

    first: float | None = None

    def compose(self) -> ComposeResult:
        yield Static("hello")

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        if self.first is None:
            self.first = time.perf_counter()


async def until(condition: Callable[[], bool], what: str, step: float = 0.001) -> None:
    """Poll `condition` (things inside the app have no event to await from here)."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {WAIT_LIMIT:g}s")
        await asyncio.sleep(step)


# -- places, processes, cleanup ---------------------------------------------------------------


def bench_environ(root: Path) -> dict[str, str]:
    """This environment, with looptui's state and sockets inside `root`, git's identity set and
    nothing pointing git or looptui elsewhere. Also made this process's own environment, for
    what reads os.environ (where worktrees go)."""
    for name in ("state", "run"):
        (root / name).mkdir(mode=0o700)
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key != "LOOPTUI_NO_SERVICE"
    }
    environ.update(IDENTITY, XDG_STATE_HOME=str(root / "state"), XDG_RUNTIME_DIR=str(root / "run"))
    os.environ.clear()
    os.environ.update(environ)
    return environ


def make_repository(directory: Path, config: dict[str, Any] | None) -> Path:
    directory.mkdir(parents=True)
    (directory / "README.md").write_text("bench\n")
    if config is not None:
        (directory / CONFIG_NAME).write_text(tomli_w.dumps(config))
    for command in (
        ["git", "init", "-q", "--initial-branch=main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "bench"],
    ):
        subprocess.run(command, cwd=directory, check=True, env={**os.environ, **IDENTITY})
    return directory


class Cleanup:
    """Undo everything this run made under `root`, whatever happened."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def processes(self) -> list[psutil.Process]:
        """Processes started here: `root` is in their command line or working directory."""
        needle, found = str(self.root), []
        for process in psutil.process_iter(["cmdline", "cwd"]):
            if process.pid == os.getpid():
                continue
            command = process.info.get("cmdline") or []
            cwd = process.info.get("cwd") or ""
            if any(needle in part for part in command) or cwd.startswith(needle):
                found.append(process)
        return found

    def __call__(self) -> None:
        found = self.processes()
        services = [p for p in found if "serve" in (p.info.get("cmdline") or [])]
        for process in services:  # a clean stop first: it stops its agents itself
            with contextlib.suppress(psutil.Error):
                process.terminate()
        psutil.wait_procs(services, timeout=15)
        rest = self.processes()
        for process in rest:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(rest, timeout=10)
        left = self.processes()
        shutil.rmtree(self.root, ignore_errors=True)
        print(
            f"\ncleanup: {len(found)} process(es) of this run were still alive "
            f"({len(services)} service(s)), {len(left)} left after stopping them; "
            f"{self.root} {'still exists' if self.root.exists() else 'removed'}",
            file=sys.stderr,
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def finished_run(repository: Repository, base: str, index: int, now: float) -> Run:
    run_id = f"{index:08x}"
    return Run(
        id=run_id,
        loop=f"loop-{index % 7}",
        agent="replay",
        status=RunStatus.SUCCEEDED if index % 3 else RunStatus.FAILED,
        prompt="p",
        base_branch="main",
        base_commit=base,
        branch=f"looptui/l/{run_id}",
        worktree=str(repository.worktrees_dir / run_id),
        max_iterations=3,
        iterations=1,
        created_at=now - 10_000 + index,
        started_at=now - 10_000 + index,
        finished_at=now - 10_000 + index + 30,
    )


async def emit_paced(store: Store, items: Iterator[tuple[str, AnyPayload, int]]) -> int:
    """Emit every item, keeping at most PACE of them unwritten (see bench/ingest.py)."""
    base, emitted = store.events_written, 0
    for run_id, payload, iteration in items:
        store.emit(run_id, payload, iteration)
        emitted += 1
        if emitted % CHUNK == 0:
            await asyncio.sleep(0)
            while emitted - (store.events_written - base) > PACE:
                await asyncio.sleep(0.001)
    await store.flush()
    if store.events_dropped:
        raise SystemExit(f"the store dropped {store.events_dropped} events as overload")
    return emitted


async def stop_and_wait(repo: Path, environ: dict[str, str], service: psutil.Process) -> None:
    """Stop the repository's service as `looptui service stop` does, and wait for its exit
    (it lets go of its lock a moment before)."""
    await asyncio.to_thread(stop_service, repo, environ)
    with contextlib.suppress(psutil.Error):
        await asyncio.to_thread(service.wait, 30)


def cores(before: Any, after: Any, wall: float) -> float:
    # psutil's counters move in clock ticks: an idle process can come out a hair below 0
    return max(0.0, (after.user + after.system - before.user - before.system) / wall)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- 1. live load -----------------------------------------------------------------------------


async def live(args: argparse.Namespace, root: Path, environ: dict[str, str]) -> None:
    count = int(args.rate * args.seconds)
    signals = root / "signals"
    signals.mkdir(parents=True)
    (root / "flood.py").write_text(flood_agent())
    config = {
        "settings": {"max_parallel": args.runs},
        "agents": {
            "flood": {
                "kind": "command",
                "command": [
                    sys.executable,
                    str(root / "flood.py"),
                    str(args.rate),
                    str(count),
                    str(signals),
                ],
            },
            "idle": {"kind": "command", "command": ["true"]},
        },
        "loops": {
            name: {
                "prompt": "stream",
                "agent": name,
                "max_iterations": 1,
                "checks": [{"name": "ok", "run": "true"}],
            }
            for name in ("flood", "idle")
        },
    }
    repo = make_repository(root / "repo", config)
    client = await open_supervisor(
        repo, environ, load_config(repo / CONFIG_NAME), service=True, client="tui"
    )
    assert isinstance(client, RemoteSupervisor) and client.service is not None
    service = psutil.Process(client.service.pid)
    me = psutil.Process()
    started: list[str] = []
    try:
        app = timed_app(client, root)
        async with app.run_test(size=SIZE) as pilot:
            await until(lambda: app.first_grid is not None, "the first frame")
            # the floor: the same presses on the idle app, two finished runs on its grid
            idle_runs = [(await client.start_run("idle")).id for _ in range(2)]
            for run_id in idle_runs:
                await client.wait(run_id)
            await until(lambda: len(app.board.summaries) == 2, "the idle runs' cards")
            await pilot.pause(0.5)
            idle_wall0, idle_tui0, idle_service0 = (
                time.perf_counter(),
                me.cpu_times(),
                service.cpu_times(),
            )
            idle = await key_latencies(app, args.idle_presses, PRESS_INTERVAL)  # type: ignore[arg-type]
            idle_wall = time.perf_counter() - idle_wall0
            idle_tui = cores(idle_tui0, me.cpu_times(), idle_wall)
            idle_service = cores(idle_service0, service.cpu_times(), idle_wall)

            t_start = time.perf_counter()
            started = [(await client.start_run("flood")).id for _ in range(args.runs)]
            await until(
                lambda: all((signals / run_id).exists() for run_id in started),
                "every agent to be ready",
                0.05,
            )
            start_seconds = time.perf_counter() - t_start
            (signals / "go").touch()
            wall0, tui0, service0 = time.perf_counter(), me.cpu_times(), service.cpu_times()
            # pressed in pairs (`l`, `h`) until the first agents would finish: on a slow
            # machine a fixed count of presses would outlast the load
            busy: list[float] = []
            last_pair = wall0 + args.seconds - 0.5 - 2 * PRESS_INTERVAL
            while time.perf_counter() < last_pair or not busy:
                busy += await key_latencies(app, 2, PRESS_INTERVAL)  # type: ignore[arg-type]
            tui1, service1 = me.cpu_times(), service.cpu_times()
            wall = time.perf_counter() - wall0
            streaming = sum(
                1
                for run_id in started
                if (summary := app.board.summaries.get(run_id)) and summary.status.is_active
            )
            cards = len(app.screen.query_one(CardGrid).runs)
            t_end = time.perf_counter()
            ended = [await client.wait(run_id) for run_id in started]
            drain = time.perf_counter() - t_end
    finally:
        await client.close()
        await stop_and_wait(repo, environ, service)
    stored, differing = await stored_lines(Repository(repo).store_path, started, count)
    statuses = sorted({run.status.value for run in ended})

    print(f"## live load: {args.runs} runs × {args.rate} lines/s × {args.seconds:g} s\n")
    print("| measure | idle app | under load | target |\n| --- | --- | --- | --- |")
    print(f"| key → frame p50 | {ms(statistics.median(idle))} | {ms(statistics.median(busy))} | |")
    print(
        f"| key → frame p99 | {ms(percentile(idle, 0.99))} | {ms(percentile(busy, 0.99))} "
        "| < 25 ms |"
    )
    print(f"| key → frame max | {ms(max(idle))} | {ms(max(busy))} | |")
    print(
        f"| CPU, TUI process | {idle_tui:.2f} cores | {cores(tui0, tui1, wall):.2f} cores | < 0.5 |"
    )
    print(
        f"| CPU, service process | {idle_service:.2f} cores "
        f"| {cores(service0, service1, wall):.2f} cores | < 1 |"
    )
    print(
        f"\nkey presses: {len(idle)} idle, {len(busy)} under load over {wall:.1f} s; "
        f"cards: {cards}; runs still streaming when the window closed: {streaming} of "
        f"{args.runs}"
    )
    print(
        f"starting the runs until every agent was ready: {start_seconds:.1f} s; after the "
        f"window, until every run ended: {drain:.1f} s (statuses: {', '.join(statuses)})"
    )
    print(
        f"lines stored: {stored} of {args.runs * count}; runs whose stored lines differ from "
        f"what they printed: {differing}\n"
    )


async def stored_lines(path: Path, run_ids: list[str], count: int) -> tuple[int, int]:
    """Lines stored for these runs, and how many runs' stored lines (in order) are not
    exactly what their agents printed."""
    store = await Store.open(path)
    stored = differing = 0
    try:
        for run_id in run_ids:
            lines = [
                event.payload.line
                for event in await store.events(run_id, kinds=[EventKind.OUTPUT])
                if isinstance(event.payload, OutputPrinted) and event.payload.stream == "stdout"
            ]
            stored += len(lines)
            differing += lines != [flood_line(run_id, index) for index in range(count)]
    finally:
        await store.close()
    return stored, differing


# -- 2. attach ---------------------------------------------------------------------------------


async def seed_attach(repo: Path, runs: int, big_lines: int) -> tuple[str, str]:
    """`runs` finished runs, the newest with `big_lines` lines; its id and its last line."""
    repository = Repository(repo)
    base = repository.branch_commit("main")
    now = time.time()
    store = await Store.open(repository.store_path)
    try:
        for index in range(runs):
            run = finished_run(repository, base, index, now)
            await store.insert_run(run)
            lines = big_lines if index == runs - 1 else 40
            await emit_paced(
                store,
                ((run.id, OutputPrinted(flood_line(run.id, n)), 1) for n in range(lines)),
            )
            await store.add_verdict(run.id, 1, Verdict(index % 3 != 0, "checks", 1.0, ("r",), ()))
    finally:
        await store.close()
    big = f"{runs - 1:08x}"
    return big, flood_line(big, big_lines - 1)


def shows_last_line(app: TimedApp, last: str) -> bool:
    screen = app.screen
    if not isinstance(screen, RunScreen):
        return False
    try:
        log = screen.query_one(RunLog)
    except NoMatches:
        return False
    return (
        bool(log.lines)
        and any(last in strip.text for strip in log.lines[-3:])
        and log.scroll_offset.y >= log.max_scroll_y
    )


async def attach_sample(
    supervisor: Supervisor, root: Path, runs: int, big: str, last: str
) -> tuple[float, float]:
    """Seconds from creating the app to its first frame, and from Enter on the big run's card
    to the first frame after its log shows its last line."""
    created = time.perf_counter()
    app = timed_app(supervisor, root)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.first_grid is not None, "the first frame")
        assert app.first_grid is not None
        first = app.first_grid - created
        if len(app.board.summaries) != runs:
            raise SystemExit(f"the grid shows {len(app.board.summaries)} runs, not {runs}")
        app.screen.query_one(CardGrid).select(big)
        await pilot.pause(0.3)
        driver = app._driver
        assert driver is not None
        sent = time.perf_counter()
        driver.send_message(events.Key("enter", "\r"))
        await until(lambda: shows_last_line(app, last), "the big run's last line")
        shown = time.perf_counter()
        await until(lambda: app.frames[-1] >= shown, "a frame after the last line")
        opened = next(frame for frame in app.frames if frame >= shown) - sent
    return first, opened


async def bare_first_frame() -> float:
    created = time.perf_counter()
    app = BareApp()
    async with app.run_test(size=SIZE):
        await until(lambda: app.first is not None, "the bare app's first frame")
    assert app.first is not None
    return app.first - created


def raw_read(path: Path, run_id: str) -> float:
    """Seconds for raw sqlite3 to read and decode what the run's log shows."""
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT * FROM (SELECT id, run_id, iteration, ts, kind, data FROM events "
            "WHERE run_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            (run_id, KEPT_EVENTS),
        ).fetchall()
        decoded = [json.loads(row[5]) for row in rows]
    assert len(decoded) == KEPT_EVENTS or len(decoded) == len(rows)
    return time.perf_counter() - started


async def attach(args: argparse.Namespace, root: Path, environ: dict[str, str]) -> None:
    repo = make_repository(root / "repo", None)
    t0 = time.perf_counter()
    big, last = await seed_attach(repo, args.stored_runs, args.big_lines)
    seeded = time.perf_counter() - t0
    store_path = Repository(repo).store_path
    samples = args.samples

    async def sampled(measure: Callable[[], Awaitable[Any]]) -> list[Any]:
        await measure()  # warm-up: imports, caches, the page cache
        return [await measure() for _ in range(samples)]

    bare = await sampled(bare_first_frame)
    raw = await sampled(lambda: asyncio.to_thread(raw_read, store_path, big))

    async def in_process() -> tuple[float, float, float]:
        t = time.perf_counter()
        engine = await Engine.open(repo, environ, None)
        opened = time.perf_counter() - t
        try:
            first, shown = await attach_sample(engine, root, args.stored_runs, big, last)
        finally:
            await engine.close()
        return opened, first, shown

    local = await sampled(in_process)

    first_client = await open_supervisor(repo, environ, None, service=True, client="tui")
    assert first_client.service is not None
    service = psutil.Process(first_client.service.pid)
    await first_client.close()  # the service is started, and stays

    async def remote() -> tuple[float, float, float]:
        t = time.perf_counter()
        client = await open_supervisor(repo, environ, None, service=True, client="tui")
        connected = time.perf_counter() - t
        try:
            first, shown = await attach_sample(client, root, args.stored_runs, big, last)
        finally:
            await client.close()
        return connected, first, shown

    try:
        served = await sampled(remote)
    finally:
        await stop_and_wait(repo, environ, service)

    def median(values: list[tuple[float, ...]], column: int) -> str:
        return ms(statistics.median(value[column] for value in values))

    print(
        f"## attach: {args.stored_runs} stored runs, one of {args.big_lines:,} lines; "
        f"medians of {samples} after a warm-up\n"
    )
    print(f"store written with the Store API in {seeded:.1f} s\n")
    print("| measure | service (RemoteSupervisor) | in-process Engine | floor | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| connect / Engine.open | {median(served, 0)} | {median(local, 0)} | | |\n"
        f"| app created → first frame | {median(served, 1)} | {median(local, 1)} "
        f"| {ms(statistics.median(bare))} (bare Textual app) | < 500 ms |\n"
        f"| Enter → big run's last line shown | {median(served, 2)} | {median(local, 2)} "
        f"| {ms(statistics.median(raw))} (raw sqlite3 read of its last {KEPT_EVENTS:,} "
        "lines) | < 300 ms |"
    )
    print(
        f"\nslowest service samples: first frame {ms(max(value[1] for value in served))}, "
        f"last line shown {ms(max(value[2] for value in served))}\n"
    )


# -- 3. restart --------------------------------------------------------------------------------

ROW_TEXTS = [" ".join(random.Random(n).choices(FLOOD_WORDS, k=4 + n % 12)) for n in range(4096)]


def restart_events(count: int, runs: int) -> Iterator[tuple[str, AnyPayload, int]]:
    """`count` events over `runs` runs, each run's events together (runs mostly follow one
    another): nine output lines to one agent message."""
    for index in range(count):
        run_id = f"{index * runs // count:08x}"
        text = f"{index:07d} {ROW_TEXTS[index % len(ROW_TEXTS)]}"
        payload: AnyPayload = AgentSaid(text) if index % 10 == 9 else OutputPrinted(text)
        yield run_id, payload, 1


async def build_with_store(repo: Path, count: int, runs: int) -> float:
    repository = Repository(repo)
    base, now = repository.branch_commit("main"), time.time()
    store = await Store.open(repository.store_path)  # schema made outside the clock
    started = time.perf_counter()
    try:
        for index in range(runs):
            await store.insert_run(finished_run(repository, base, index, now))
        written = await emit_paced(store, restart_events(count, runs))
    finally:
        await store.close()
    elapsed = time.perf_counter() - started
    assert written == count
    return elapsed


RAW_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


def build_raw(path: Path, repository: Repository, count: int, runs: int) -> float:
    """The same runs and events with raw sqlite3, into the store's own schema."""
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in RAW_PRAGMAS:
        db.execute(pragma)
    for number, script in enumerate(MIGRATIONS, start=1):
        db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    base, now = repository.branch_commit("main"), time.time()
    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO runs (id, loop, agent, status, prompt, base_branch, base_commit, branch, "
        "worktree, max_iterations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                *(r.id, r.loop, r.agent, r.status.value, r.prompt, r.base_branch),
                *(r.base_commit, r.branch, r.worktree, r.max_iterations, r.created_at),
            )
            for r in (finished_run(repository, base, index, now) for index in range(runs))
        ],
    )
    db.execute("COMMIT")
    batch: list[tuple[Any, ...]] = []
    for run_id, payload, iteration in restart_events(count, runs):
        data = json.dumps(payload_fields(payload), ensure_ascii=False)
        batch.append((run_id, iteration, time.time(), payload.kind.value, data))
        if len(batch) == BATCH_SIZE:
            _insert_rows(db, batch)
            batch = []
    if batch:
        _insert_rows(db, batch)
    db.close()
    return time.perf_counter() - started


def _insert_rows(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO events (run_id, iteration, ts, kind, data) VALUES (?, ?, ?, ?, ?)", rows
    )
    db.execute("COMMIT")


def counted(path: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    return int(events), int(runs)


async def restart_sample(
    repo: Path, place: Place, environ: dict[str, str], runs: int, log: Path
) -> tuple[float, float]:
    """Seconds from spawning `looptui serve` to its Hello answered, and to ListRuns answered."""
    with open(log, "ab") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "looptui", "serve", "--repo", str(repo)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=environ,
            cwd=repo,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            if process.poll() is not None:
                raise SystemExit(f"looptui serve exited {process.returncode}; see {log}")
            try:
                client = await RemoteSupervisor.connect(
                    lambda: _connect(place, environ, "bench", False), None, repo.name
                )
                break
            except (ServiceError, OSError):
                if time.monotonic() > deadline:
                    raise SystemExit(f"looptui serve did not answer; see {log}") from None
                await asyncio.sleep(0.002)
        hello = time.perf_counter() - started
        listed = await client.history.runs()
        answered = time.perf_counter() - started
        await client.close()
        if len(listed) != runs:
            raise SystemExit(f"the service listed {len(listed)} runs, not {runs}")
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
    return hello, answered


def import_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import looptui.cli"], check=True)
    return time.perf_counter() - started


async def restart(args: argparse.Namespace, root: Path, environ: dict[str, str]) -> None:
    repo = make_repository(root / "repo", None)
    repository = Repository(repo)
    raw_path = root / "raw.db"
    store_seconds = await build_with_store(repo, args.events, args.event_runs)
    raw_seconds = await asyncio.to_thread(
        build_raw, raw_path, repository, args.events, args.event_runs
    )
    for path in (repository.store_path, raw_path):
        if counted(path) != (args.events, args.event_runs):
            raise SystemExit(f"{path}: {counted(path)} (events, runs), expected otherwise")
    megabytes = repository.store_path.stat().st_size / 1e6
    raw_path.unlink()

    place = Place.of(repo, environ)
    log = root / "serve.log"
    await restart_sample(repo, place, environ, args.event_runs, log)  # warm-up
    served = [
        await restart_sample(repo, place, environ, args.event_runs, log)
        for _ in range(args.samples)
    ]
    floor = [await asyncio.to_thread(import_floor) for _ in range(args.samples)]

    async def engine_open() -> float:
        started = time.perf_counter()
        engine = await Engine.open(repo, environ, None)
        try:
            runs = await engine.history.runs()
        finally:
            elapsed = time.perf_counter() - started
            await engine.close()
        assert len(runs) == args.event_runs
        return elapsed

    opened = [await engine_open() for _ in range(args.samples)]

    print(
        f"## restart: {args.events:,} events over {args.event_runs} runs "
        f"({megabytes:.0f} MB store)\n"
    )
    print("| building the store | seconds | events/s |\n| --- | --- | --- |")
    print(
        f"| Store API (insert_run, emit, flush) | {store_seconds:.2f} | "
        f"{args.events / store_seconds:,.0f} |"
    )
    print(
        f"| raw sqlite3, {BATCH_SIZE} rows/transaction | {raw_seconds:.2f} | "
        f"{args.events / raw_seconds:,.0f} |"
    )
    print(f"\nStore API ÷ raw: {store_seconds / raw_seconds:.2f}×\n")
    print(f"| start, medians of {args.samples} after a warm-up | time | target |")
    print("| --- | --- | --- |")
    hello = statistics.median(value[0] for value in served)
    answered = statistics.median(value[1] for value in served)
    print(f"| `looptui serve` spawned → Hello answered | {ms(hello)} | |")
    print(f"| `looptui serve` spawned → ListRuns answered | {ms(answered)} | < 1 s |")
    print(f"| floor: interpreter + `import looptui.cli` | {ms(statistics.median(floor))} | |")
    print(f"| in-process Engine.open + runs() | {ms(statistics.median(opened))} | |")
    print(f"\nslowest ListRuns answered: {ms(max(value[1] for value in served))}\n")


# -- main --------------------------------------------------------------------------------------


def header() -> None:
    commit = subprocess.run(
        ["git", "-C", str(MAIN), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(MAIN), "status", "--porcelain", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    model = cpu_model()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"# bench/service.py, {now}")
    print(
        f"commit {commit}{' (src/ modified in the working tree)' if dirty else ''}; "
        f"{os.cpu_count()} cores ({model}); load average {load}; Python "
        f"{platform.python_version()}; SQLite {sqlite3.sqlite_version}; Textual at most "
        f"{textual.constants.MAX_FPS} frames/s\n"
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", action="append", choices=PARTS, help="repeatable; default all")
    parser.add_argument("--small", action="store_true", help=f"small sizes: {SMALL}")
    parser.add_argument("--runs", type=int, help="live runs")
    parser.add_argument("--rate", type=int, help="lines a second, per live run")
    parser.add_argument("--seconds", type=float, help="how long each live run streams")
    parser.add_argument("--idle-presses", type=int, help="key presses on the idle app")
    parser.add_argument("--stored-runs", type=int, help="runs in the attach store")
    parser.add_argument("--big-lines", type=int, help="lines of the attach store's big run")
    parser.add_argument("--events", type=int, help="events in the restart store")
    parser.add_argument("--event-runs", type=int, help="runs in the restart store")
    parser.add_argument("--samples", type=int, help="timed samples of attach and restart")
    args = parser.parse_args()
    sizes = SMALL if args.small else FULL
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rate * args.seconds > MAX_OUTPUT_LINES:
        parser.error(f"a command agent's turn keeps {MAX_OUTPUT_LINES} lines: rate × seconds")
    return args


def main() -> int:
    args = arguments()
    WORK.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="service-", dir=WORK))
    cleanup = Cleanup(root)
    signal.signal(signal.SIGTERM, _interrupt)
    code = 0
    try:
        environ = bench_environ(root)
        header()
        parts = {"live": live, "attach": attach, "restart": restart}
        for part in args.part or PARTS:
            asyncio.run(parts[part](args, root / part, environ))
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    finally:
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"load average at the end {load}")
        cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
