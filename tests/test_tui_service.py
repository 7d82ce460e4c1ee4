"""The app as a client of the repository's service: runs outlive the window, two windows see
the same runs, and a service that dies is replaced under an open window.

Every test goes through the real service (`looptui serve`, started detached by the client's
connector). The loop's agent waits for a file the test creates, so the test decides when the
runs finish; nothing waits on a fixed sleep.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static

from conftest import BUGGY_PACKAGE, cli_env, fixer_config, make_repo
from looptui.client.api import Supervisor
from looptui.client.connect import open_supervisor
from looptui.engine import Config, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.invocation import looptui_command
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.quit import QuitScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.settings import Settings
from looptui.tui.themes import SHIPPED_THEMES
from looptui.tui.widgets.run_log import RunLog
from tui_support import until

pytestmark = pytest.mark.usefixtures("service")

STARTED = "slow fixer started"
LOOPTUI = looptui_command()  # the venv's looptui by its path when PATH would not find it
SLOW_FIXER = f"""\
import os, pathlib, sys, time
print({STARTED!r}, "as pid", os.getpid(), flush=True)
go = pathlib.Path(sys.argv[2])
while not go.exists():  # the test creates it when the runs may finish
    time.sleep(0.05)
path = pathlib.Path("shapes/area.py")
path.write_text(path.read_text().replace("width + height", "width * height"))
print("fixed rectangle()")
"""


class Setup:
    """A repository whose `fix` loop's agent waits for `go` to exist, and how to reach it."""

    def __init__(self, tmp_path: Path) -> None:
        self.go = tmp_path / "go"
        config = fixer_config()
        config["agents"]["fixer"]["command"] = [
            "python",
            "tools/slow_fix.py",
            "{prompt_file}",
            str(self.go),
        ]
        files = {**BUGGY_PACKAGE, "tools/slow_fix.py": SLOW_FIXER}
        self.repo = make_repo(tmp_path / "repo", files, config)
        self.config: Config = load_config(self.repo / CONFIG_NAME)
        self.environ = {**cli_env(), "HOME": str(tmp_path / "home")}
        self.settings = tmp_path / "settings.toml"

    async def client(self) -> Supervisor:
        return await open_supervisor(
            self.repo, self.environ, self.config, service=True, client="tui"
        )

    @asynccontextmanager
    async def app(self) -> AsyncIterator[tuple[LooptuiApp, Pilot[None]]]:
        """A fresh app on a fresh client of the service; the client closes after the app."""
        supervisor = await self.client()
        try:
            app = LooptuiApp(
                supervisor, Settings.load(self.settings), theme_dirs=(SHIPPED_THEMES,), bell=False
            )
            async with app.run_test(size=(160, 50)) as pilot:
                await until(pilot, lambda: isinstance(app.screen, GridScreen))
                yield app, pilot
        finally:
            await supervisor.close()


def grid_of(app: LooptuiApp) -> GridScreen:
    """The grid, whatever screen is on top of it."""
    return next(screen for screen in app.screen_stack if isinstance(screen, GridScreen))


def title(app: LooptuiApp) -> str:
    return str(grid_of(app).query_one("#title").render())


def card_statuses(app: LooptuiApp) -> dict[str, RunStatus]:
    return {summary.id: summary.status for summary in grid_of(app).cards.runs}


def waiting_for_go(app: LooptuiApp, run_ids: list[str]) -> bool:
    summaries = app.board.summaries
    return all(
        run_id in summaries
        and summaries[run_id].status is RunStatus.RUNNING
        and summaries[run_id].last_line.startswith(STARTED)
        for run_id in run_ids
    )


async def start_two(app: LooptuiApp, pilot: Pilot[None]) -> list[str]:
    run_ids = [(await app.engine.start_run("fix")).id for _ in range(2)]
    await until(pilot, lambda: waiting_for_go(app, run_ids))
    return run_ids


def exit_messages(app: LooptuiApp) -> list[str]:
    """What the app asks Textual to print once it is gone, as it asks."""
    said: list[str] = []
    leave = app.exit

    def exit(*args: Any, message: object = None, **kwargs: Any) -> None:
        said.append(str(message))
        leave(*args, message=message, **kwargs)  # type: ignore[arg-type]

    app.exit = exit  # type: ignore[method-assign]
    return said


async def test_quit_leaves_the_runs_going_and_a_new_window_follows_them(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    async with setup.app() as (app, pilot):
        pid = app.engine.service.pid if app.engine.service else None
        assert pid is not None and f"service pid {pid}" in title(app)
        run_ids = await start_two(app, pilot)
        said = exit_messages(app)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    # what the terminal says once the app is gone (Textual prints its exit message)
    assert said == [
        f"2 runs go on in the looptui service (pid {pid}): `{LOOPTUI} status` lists them, "
        f"`{LOOPTUI}` opens the app again"
    ]
    other = await setup.client()
    try:
        assert sorted(await other.active_runs()) == sorted(run_ids)
    finally:
        await other.close()

    async with setup.app() as (app, pilot):
        assert card_statuses(app) == dict.fromkeys(run_ids, RunStatus.RUNNING)
        assert "2 active" in title(app)
        grid = app.screen
        assert isinstance(grid, GridScreen)
        grid.cards.select(run_ids[0])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        log = app.screen.query_one(RunLog)
        await until(pilot, lambda: any(STARTED in strip.text for strip in log.lines))
        setup.go.touch()
        await until(pilot, lambda: "succeeded" in str(app.screen.query_one("#run-title").render()))
        await until(
            pilot, lambda: card_statuses(app) == dict.fromkeys(run_ids, RunStatus.SUCCEEDED)
        )
        await until(pilot, lambda: "2 need you" in title(app))  # the grid heard it, below
        assert any("fixed rectangle()" in strip.text for strip in log.lines)


async def test_quitting_with_one_run_going_speaks_of_it_in_the_singular(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    async with setup.app() as (app, pilot):
        pid = app.engine.service.pid if app.engine.service else None
        run_id = (await app.engine.start_run("fix")).id
        await until(pilot, lambda: waiting_for_go(app, [run_id]))
        said = exit_messages(app)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        question = str(app.screen.query_one("#question", Static).render())
        assert question == (
            "1 run is still going. It goes on in the looptui service after you quit; "
            "open looptui again to follow it."
        )
        assert str(app.screen.query_one("#stop", Button).label) == "Stop it and quit (s)"
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    assert said == [
        f"1 run goes on in the looptui service (pid {pid}): `{LOOPTUI} status` lists it, "
        f"`{LOOPTUI}` opens the app again"
    ]
    setup.go.touch()  # the run may end


async def test_two_windows_on_one_service_see_the_same_runs_live(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    async with setup.app() as (first, first_pilot), setup.app() as (second, second_pilot):
        assert first.engine.service and second.engine.service
        assert first.engine.service.pid == second.engine.service.pid
        run = await first.engine.start_run("fix")
        await until(second_pilot, lambda: card_statuses(second).get(run.id) is RunStatus.RUNNING)
        await until(second_pilot, lambda: waiting_for_go(second, [run.id]))
        setup.go.touch()
        await until(second_pilot, lambda: card_statuses(second).get(run.id) is RunStatus.SUCCEEDED)
        await until(first_pilot, lambda: card_statuses(first).get(run.id) is RunStatus.SUCCEEDED)
        for app, pilot in ((first, first_pilot), (second, second_pilot)):  # the titles heard it
            await until(pilot, lambda app=app: "1 needs you" in title(app))  # type: ignore[misc]


async def test_s_in_the_quit_dialog_stops_the_runs_and_quits(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    async with setup.app() as (app, pilot):
        run_ids = await start_two(app, pilot)
        said = exit_messages(app)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("s")
        await until(pilot, lambda: not app.is_running)
    assert said == ["stopped 2 runs; their work is kept: `looptui resume RUN` continues one"]
    other = await setup.client()
    try:
        assert await other.active_runs() == []
        for run_id in run_ids:
            assert (await other.history.run(run_id)).status is RunStatus.CANCELLED
    finally:
        await other.close()


async def test_a_killed_service_is_replaced_and_the_window_follows_the_resumed_runs(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path)
    async with setup.app() as (app, pilot):
        run_ids = await start_two(app, pilot)
        first_agents = {run_id: app.board.summaries[run_id].last_line for run_id in run_ids}
        assert app.engine.service is not None
        killed = app.engine.service.pid
        os.kill(killed, signal.SIGKILL)

        def replaced() -> bool:
            service = app.engine.service
            return app.connection == "connected" and service is not None and service.pid != killed

        await until(pilot, replaced)
        assert app.engine.service is not None
        await until(pilot, lambda: f"service pid {app.engine.service.pid}" in title(app))  # type: ignore[union-attr]
        messages = [notification.message for notification in app._notifications]
        assert any("lost the connection to the looptui service" in m for m in messages)
        assert any("connected to the looptui service again" in m for m in messages)
        assert app.bridge_error is None

        # the new service resumed both runs: their agents start again (another pid) and wait
        def resumed() -> bool:
            summaries = app.board.summaries
            lines = {run_id: summaries[run_id].last_line for run_id in run_ids}
            return waiting_for_go(app, run_ids) and all(
                lines[run_id] != first_agents[run_id] for run_id in run_ids
            )

        await until(pilot, resumed)
        setup.go.touch()
        await until(
            pilot,
            lambda: card_statuses(app) == dict.fromkeys(run_ids, RunStatus.SUCCEEDED),
            limit=60,
        )
        await until(pilot, lambda: "2 need you" in title(app))
