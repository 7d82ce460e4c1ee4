"""How the app holds up under load, and how fast it starts.

1. Load: N runs (default 100) of a replay agent that prints R lines a second (default 100)
   for D seconds (default 30, so ~300 presses back the p99), all at once, in the app
   (headless, 160x50, the grid on screen). While they stream, a key press (`l`/`h`: move
   between cards) every 100 ms; its latency is the time from the key reaching the app to the
   first frame written after the focus moved. Reported: p50/p99/max latency, the process's
   CPU (all threads, in cores), and whether every line reached the store. Compared, in the
   same run, with the same key presses on an idle app.
2. Start-up: time from a fresh interpreter's start to the app's first frame on a store of
   500 finished runs, against a bare Textual app's first frame (the floor).

Run: python bench/tui.py [--runs 100] [--rate 100] [--seconds 30]
"""

from __future__ import annotations

import looptui.tui  # noqa: F401  (first: it sets Textual's frame rate, as the app does)

# isort: split

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from textual import events
from textual.screen import Screen

from looptui.engine import Config, Engine, EventKind, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.protocol.events import OutputPrinted
from looptui.tui.app import LooptuiApp
from looptui.tui.settings import Settings
from looptui.tui.widgets.card_grid import CardGrid

WORK = Path(__file__).resolve().parent / ".work"


class TimedApp(LooptuiApp):
    """The real app, noting when each frame is written."""

    frames: list[float]

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        self.frames.append(time.perf_counter())


def make_repository(directory: Path, rate: int, seconds: float, runs: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "README.md").write_text("bench\n")
    steps = [
        {"at": index / rate, "log": f"line {index:06d} of a busy agent, streaming"}
        for index in range(int(rate * seconds))
    ]
    steps.append({"at": seconds, "message": "done"})
    (directory / "flood.jsonl").write_text("\n".join(json.dumps(s) for s in steps) + "\n")
    (directory / CONFIG_NAME).write_text(
        "[settings]\n"
        f"max_parallel = {runs}\n\n"
        '[agents.flood]\nkind = "replay"\nscript = "flood.jsonl"\n\n'
        '[loops.flood]\nprompt = "stream"\nagent = "flood"\nmax_iterations = 1\n'
        'checks = [{ name = "ok", run = "true" }]\n'
    )
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "b"],
    ):
        subprocess.run(command, cwd=directory, check=True)
    return directory


async def key_latencies(app: TimedApp, presses: int, interval: float) -> list[float]:
    """Press l and h alternately; each latency ends at the first frame written after the
    cursor moved (the moment of the move is taken inside the grid, not by polling it)."""
    driver = app._driver
    assert driver is not None
    grid = app.screen.query_one(CardGrid)
    moves: list[float] = []
    move_to = grid._move_to

    def timed_move_to(index: int) -> None:
        move_to(index)
        moves.append(time.perf_counter())

    grid._move_to = timed_move_to  # type: ignore[method-assign]
    latencies = []
    try:
        for index in range(presses):
            await asyncio.sleep(interval)
            seen = len(moves)
            key = "l" if index % 2 == 0 else "h"
            sent = time.perf_counter()
            driver.send_message(events.Key(key, key))
            while len(moves) == seen:
                await asyncio.sleep(0.0005)
            moved = moves[-1]
            while not app.frames or app.frames[-1] < moved:
                await asyncio.sleep(0.0005)
            latencies.append(next(f for f in app.frames if f >= moved) - sent)
    finally:
        grid._move_to = move_to  # type: ignore[method-assign]
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def load(runs: int, rate: int, seconds: float) -> dict[str, Any]:
    repo = make_repository(Path(tempfile.mkdtemp(dir=WORK)) / "repo", rate, seconds, runs)
    config: Config = load_config(repo / CONFIG_NAME)
    engine = await Engine.open(repo, dict(os.environ), config)
    app = TimedApp(engine, Settings(WORK / "settings.toml"), bell=False)
    app.frames = []
    result: dict[str, Any] = {}
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause(0.5)
            # the app idle, with only one card: the floor for the same key presses
            for _ in range(2):
                await engine.start_run("flood")
            while engine.active_run_ids():
                await asyncio.sleep(0.1)
            await pilot.pause(0.5)
            idle = await key_latencies(app, 100, 0.1)

            started = [await engine.start_run("flood") for _ in range(runs)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            presses = int(seconds / 0.1) - 5
            busy = await key_latencies(app, presses, 0.1)
            for run in started:
                await engine.wait(run.id)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            await engine.store.flush()
            await pilot.pause(0.5)
            cards = len(app.screen.query_one(CardGrid).runs)
        lines = 0
        for run in started:
            lines += len(await engine.store.events(run.id, kinds=[EventKind.OUTPUT]))
        result = {
            "idle_p50_ms": statistics.median(idle) * 1000,
            "idle_p99_ms": percentile(idle, 0.99) * 1000,
            "idle_max_ms": max(idle) * 1000,
            "busy_p50_ms": statistics.median(busy) * 1000,
            "busy_p99_ms": percentile(busy, 0.99) * 1000,
            "busy_max_ms": max(busy) * 1000,
            "presses": len(busy),
            "cpu_cores": cpu / wall,
            "wall_s": wall,
            "lines_expected": runs * int(rate * seconds),
            "lines_stored": lines,
            "cards": cards,
        }
    finally:
        await engine.close()
    return result


STARTUP_SCRIPT = """
import asyncio, os, sys, time
t0 = time.perf_counter()
from pathlib import Path
kind, repo = sys.argv[1], Path(sys.argv[2])
if kind == "bare":
    from textual.app import App
    from textual.widgets import Static
    class Bare(App):
        def compose(self):
            yield Static("hello")
        def _display(self, screen, renderable):
            super()._display(screen, renderable)
            print(time.perf_counter() - t0, flush=True)
            self.exit()
    Bare().run(headless=True, size=(160, 50))
else:
    from looptui.engine import Engine
    from looptui.tui.app import LooptuiApp
    from looptui.tui.settings import Settings
    class Timed(LooptuiApp):
        def _display(self, screen, renderable):
            super()._display(screen, renderable)
            if type(screen).__name__ == "GridScreen":
                print(time.perf_counter() - t0, len(self.board.summaries), flush=True)
                self.exit()
    async def main():
        engine = await Engine.open(repo, dict(os.environ), None)
        try:
            await Timed(engine, Settings(repo / "s.toml"), bell=False).run_async(
                headless=True, size=(160, 50)
            )
        finally:
            await engine.close()
    asyncio.run(main())
"""


async def seed_store(repo: Path, count: int) -> None:
    """`count` finished runs with events, verdicts and notes, as a busy week leaves them."""
    from looptui.engine.models import Note, NoteKind, Run, RunStatus, Verdict
    from looptui.engine.workspace import Repository

    repository = Repository(repo)
    engine = await Engine.open(repo, dict(os.environ), None)
    store = engine.store
    base = repository.branch_commit(repository.current_branch())
    now = time.time()
    for index in range(count):
        run = Run(
            id=f"{index:08x}",
            loop=f"loop-{index % 7}",
            agent="replay",
            status=RunStatus.SUCCEEDED if index % 3 else RunStatus.FAILED,
            prompt="p",
            base_branch="main",
            base_commit=base,
            branch=f"looptui/l/{index:08x}",
            worktree=str(repository.worktrees_dir / f"{index:08x}"),
            max_iterations=3,
            iterations=2,
            created_at=now - count + index,
            started_at=now - count + index,
            finished_at=now - count + index + 30,
        )
        await store.insert_run(run)
        for line in range(40):
            store.emit(run.id, OutputPrinted(f"output {line}"), 1)
        await store.add_verdict(run.id, 2, Verdict(index % 3 != 0, "checks", 1.0, ("r",), ()))
        await store.add_note(Note(run.id, 2, NoteKind.ATTEMPT, "tried", now))
    await engine.close()


def startup(runs: int, samples: int) -> dict[str, float]:
    repo = make_repository(Path(tempfile.mkdtemp(dir=WORK)) / "repo", 1, 0, 1)
    asyncio.run(seed_store(repo, runs))
    times: dict[str, list[float]] = {"bare": [], "looptui": []}
    for _ in range(samples):
        for kind in times:  # interleaved, so that both see the same machine
            out = subprocess.run(
                [sys.executable, "-c", STARTUP_SCRIPT, kind, str(repo)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            times[kind].append(float(out[0]))
            if kind == "looptui":
                assert int(out[1]) == runs, out
    return {f"{kind}_s": statistics.median(values) for kind, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rate", type=int, default=100, help="lines a second, per run")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--stored-runs", type=int, default=500)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    os.environ["XDG_STATE_HOME"] = str(WORK / "state")  # runs' worktrees, not in your home
    loaded = asyncio.run(load(args.runs, args.rate, args.seconds))
    print(f"## load: {args.runs} runs × {args.rate} lines/s × {args.seconds:g} s\n")
    print("| measure | idle app | under load |\n| --- | --- | --- |")
    print(f"| key → frame p50 | {loaded['idle_p50_ms']:.1f} ms | {loaded['busy_p50_ms']:.1f} ms |")
    print(f"| key → frame p99 | {loaded['idle_p99_ms']:.1f} ms | {loaded['busy_p99_ms']:.1f} ms |")
    print(f"| key → frame max | {loaded['idle_max_ms']:.1f} ms | {loaded['busy_max_ms']:.1f} ms |")
    print(f"\nkey presses under load: {loaded['presses']}; cards: {loaded['cards']}")
    print(f"CPU of the process: {loaded['cpu_cores']:.2f} cores over {loaded['wall_s']:.1f} s")
    print(f"lines stored: {loaded['lines_stored']} of {loaded['lines_expected']}")
    started = startup(args.stored_runs, args.samples)
    print(f"\n## start-up to the first frame, medians of {args.samples}\n")
    print("| app | first frame |\n| --- | --- |")
    print(f"| bare Textual app | {started['bare_s'] * 1000:.0f} ms |")
    print(f"| looptui, {args.stored_runs} stored runs | {started['looptui_s'] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
