"""Opening the real app on a real demo repository, for Pilot and snapshot tests."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from conftest import cli_env
from looptui.demo import REPLAYS, create_demo_repository
from looptui.engine import Config, Engine, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.tui.app import LooptuiApp
from looptui.tui.settings import Settings
from looptui.tui.themes import SHIPPED_THEMES, semantic_defaults
from looptui.tui.widgets.run_log import RunLog

FIXED_NOW = 1_790_000_000.0


def demo_repository(directory: Path) -> tuple[Path, Config]:
    """The demo repository, its replay agents set to play instantly."""
    path = create_demo_repository(directory)
    config = load_config(path / CONFIG_NAME)
    agents = {name: dataclasses.replace(agent, speed=0) for name, agent in config.agents.items()}
    return path, dataclasses.replace(config, agents=agents)


def two_hunk_repository(directory: Path) -> tuple[Path, Config]:
    """The demo repository (as `demo_repository`) whose fix-add agent also documents
    divide(): two hunks in one file, for moving between hunks. The demo's own fix-add makes
    one (its debugging line sits inside the fix); the script lives beside the repository so
    that the repository stays clean."""
    path, config = demo_repository(directory)
    steps = list(REPLAYS["fix-add"])
    fix = next(i for i, step in enumerate(steps) if "def add" in str(step.get("edit")))
    divide = {"path": "calc/arith.py", "old": "def divide(a, b):\n"}
    divide["new"] = divide["old"] + '    """a divided by b."""\n'
    steps.insert(fix + 1, {**steps[fix], "edit": divide})
    script = directory.parent / f"{directory.name}-two-hunks.jsonl"
    script.write_text("".join(json.dumps(step) + "\n" for step in steps), encoding="utf-8")
    agent = dataclasses.replace(config.agents["fix-add"], script=script)
    return path, dataclasses.replace(config, agents={**config.agents, "fix-add": agent})


@asynccontextmanager
async def open_app(
    repo: Path,
    config: Config | None,
    tmp_path: Path,
    size: tuple[int, int] = (160, 50),
    clock: float | None = None,
) -> AsyncIterator[tuple[LooptuiApp, Pilot[None]]]:
    """The app on `repo`'s engine; the engine closes after the app."""
    environ = {**cli_env(), "HOME": str(tmp_path / "home")}
    engine = await Engine.open(repo, environ, config)
    try:
        app = LooptuiApp(
            engine,
            Settings.load(tmp_path / "settings.toml"),
            theme_dirs=(SHIPPED_THEMES,),
            clock=(lambda: clock) if clock is not None else _now,
            bell=False,
            root=repo,
        )
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            yield app, pilot
    finally:
        await engine.close()


def _now() -> float:
    import time

    return time.time()


async def wait_for_runs(
    app: LooptuiApp, pilot: Pilot[None], run_ids: Iterable[str], limit: float = 60
) -> None:
    """Until each run has ended and the board shows it."""
    for run_id in run_ids:
        await app.engine.wait(run_id)
    for _ in range(int(limit * 20)):
        summaries = app.board.summaries
        if all(
            run_id in summaries and not summaries[run_id].status.is_active for run_id in run_ids
        ):
            break
        await pilot.pause(0.05)
    await pilot.pause(0.3)  # one card refresh


async def until(pilot: Pilot[None], condition: Callable[[], object], limit: float = 30) -> None:
    """Let the app run until `condition()` holds (an event to wait for, not a fixed sleep)."""
    for _ in range(int(limit / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"still false after {limit}s: {condition}")


def plain(renderable: object, width: int = 150) -> str:
    """What a Rich renderable (a widget's content) reads as, without styles."""
    from rich.console import Console

    console = Console(width=width, no_color=True, color_system=None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def statuses(app: LooptuiApp) -> dict[str, RunStatus]:
    return {s.run.loop: s.status for s in app.board.summaries.values()}


__all__ = [
    "FIXED_NOW",
    "demo_repository",
    "open_app",
    "os",
    "plain",
    "statuses",
    "two_hunk_repository",
    "until",
    "wait_for_runs",
]


class LogApp(App[None]):
    """A bare app holding one `RunLog` (id "log"), themed as looptui's own."""

    def get_css_variables(self) -> dict[str, str]:
        variables = super().get_css_variables()
        return {**semantic_defaults(variables), **variables}

    def compose(self) -> ComposeResult:
        yield RunLog(id="log")
