"""The loops view: each loop's triggers and next fire times, its last firings, and the keys
that fire a loop now and pause or resume a trigger, on a real engine in this process (where
no service runs, so no trigger fires by itself and the view says so)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from textual.pilot import Pilot

from looptui.engine import Config
from looptui.engine.triggers import Cron, Every, Watch
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.help import HelpScreen
from looptui.tui.screens.loops import LoopsScreen, LoopsTable
from looptui.tui.screens.run import RunScreen
from tui_support import demo_repository, open_app, until, wait_for_runs


def with_triggers(config: Config) -> Config:
    """The demo's config, `fix-add` fired nightly and hourly and `docs` on a change."""
    triggers = {
        "fix-add": (Cron("0 3 * * *", name="nightly"), Every(3600.0, name="hourly")),
        "docs": (Watch(("docs/**",), name="on-docs"),),
    }
    loops = {
        name: dataclasses.replace(loop, triggers=triggers.get(name, ()))
        for name, loop in config.loops.items()
    }
    return dataclasses.replace(config, loops=loops)


def rows(app: LooptuiApp, table: str) -> list[list[str]]:
    found = app.screen.query_one(f"#{table}", LoopsTable)
    return [[cell.plain for cell in found.get_row_at(index)] for index in range(found.row_count)]


def trigger_row(app: LooptuiApp, loop: str, trigger: str) -> list[str]:
    table = app.screen.query_one("#triggers", LoopsTable)
    return [cell.plain for cell in table.get_row(f"{loop}\t{trigger}")]


async def open_loops(app: LooptuiApp, pilot: Pilot[None]) -> LoopsScreen:
    await pilot.press("L")
    await until(pilot, lambda: isinstance(app.screen, LoopsScreen) and app.screen.states)
    assert isinstance(app.screen, LoopsScreen)
    return app.screen


async def select(pilot: Pilot[None], screen: LoopsScreen, loop: str, trigger: str) -> None:
    table = screen.query_one("#triggers", LoopsTable)
    table.move_cursor(row=table.get_row_index(f"{loop}\t{trigger}"))
    await pilot.pause()
    assert screen.selected() == (loop, trigger or None)


async def test_each_trigger_shows_its_next_fire_time_and_no_service_is_said(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, with_triggers(config), tmp_path) as (app, pilot):
        assert isinstance(app.screen, GridScreen)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Loops" in titles  # the palette offers the view, as `?` lists its key
        store = app.engine.store  # type: ignore[attr-defined]
        await store.set_schedule("fix-add", "nightly", next_due_at=time.time() + 3 * 3600 + 90)
        await store.set_schedule("fix-add", "hourly", next_due_at=time.time() - 2 * 3600)
        screen = await open_loops(app, pilot)
        nightly = trigger_row(app, "fix-add", "nightly")
        assert (nightly[0], nightly[1], nightly[3]) == (
            "fix-add",
            "nightly",
            'cron "0 3 * * *" (UTC)',
        )
        assert nightly[2].startswith("next ") and nightly[2].endswith("(in 3h 1m)")
        hourly = trigger_row(app, "fix-add", "hourly")
        assert hourly[0] == ""  # the loop named once, on its first trigger
        assert hourly[2].startswith("OVERDUE since ") and hourly[2].endswith("(2h 0m ago)")
        assert trigger_row(app, "docs", "on-docs")[2:] == ["on change", "watch docs/**"]
        assert trigger_row(app, "speedup", "")[1:3] == ["", "no triggers: run by hand"]
        # the engine in this process schedules nothing: the view says nothing fires
        line = screen.query_one("#not-scheduled")
        assert line.display and "the looptui service is not running" in str(line.render())
        title = str(screen.query_one("#firings-title").render())
        assert "fix-add" in title and "2 triggers" in title and "no firings yet" in title
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert isinstance(app.screen, HelpScreen)
        described = set(dict(app.screen.keys()).values())
        assert {
            "Fire the selected loop now, as a trigger would",
            "Pause the selected trigger, or resume it",
        } <= described
        await pilot.press("escape")
        await pilot.press("escape")
        assert isinstance(app.screen, GridScreen)


async def test_p_pauses_the_selected_trigger_and_resumes_it(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, with_triggers(config), tmp_path) as (app, pilot):
        screen = await open_loops(app, pilot)
        await select(pilot, screen, "fix-add", "hourly")
        store = app.engine.store  # type: ignore[attr-defined]
        await pilot.press("p")
        await until(pilot, lambda: trigger_row(app, "fix-add", "hourly")[2] == "paused")
        entry = await store.schedule_entry("fix-add", "hourly")
        assert entry is not None and entry.paused
        assert trigger_row(app, "fix-add", "nightly")[2] != "paused"  # only the one selected
        assert screen.selected() == ("fix-add", "hourly")  # the cursor stayed on its row
        await pilot.press("p")
        await until(pilot, lambda: trigger_row(app, "fix-add", "hourly")[2].startswith("next "))
        # scheduled from now: an hour away, give or take the second the test took
        assert trigger_row(app, "fix-add", "hourly")[2].endswith(("(in 59m)", "(in 1h 0m)"))
        entry = await store.schedule_entry("fix-add", "hourly")
        assert entry is not None and not entry.paused
        # a loop with no trigger has nothing to pause: the key is off
        await select(pilot, screen, "speedup", "")
        assert screen.check_action("pause", ()) is False
        assert screen.check_action("fire", ()) is True


async def test_f_fires_the_loop_and_its_firing_shows_with_its_run(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, with_triggers(config), tmp_path) as (app, pilot):
        screen = await open_loops(app, pilot)
        await select(pilot, screen, "fix-add", "nightly")
        await pilot.press("f")
        await until(pilot, lambda: rows(app, "firings"))
        [(number, _, by, outcome, run)] = rows(app, "firings")
        run_id = run.split()[0]  # and its status, as the grid has it
        assert number.startswith("#") and by == "manual"
        assert outcome in (f"started run {run_id}", f"starting run {run_id}")
        await until(pilot, lambda: run_id in app.board.summaries)
        assert any(
            n.title == "fired fix-add" and n.message.startswith(f"firing {number}: ")
            for n in app._notifications
        )
        assert "last firings" in str(screen.query_one("#firings-title").render())
        await wait_for_runs(app, pilot, [run_id])
        await until(pilot, lambda: rows(app, "firings")[0][4] == f"{run_id} succeeded")
        # enter on the firing opens its run
        await pilot.press("tab")
        assert app.focused is screen.query_one("#firings", LoopsTable)
        assert screen.check_action("open_run", ()) is True
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == run_id
        await pilot.press("escape")
        assert app.screen is screen
        # what the supervisor refuses is a toast of one line, never a traceback
        await screen.fire("no-such-loop").wait()
        [refused] = [n for n in app._notifications if n.title == "no-such-loop not fired"]
        assert refused.severity == "error" and "no-such-loop" in refused.message
        assert "\n" not in refused.message and "Traceback" not in refused.message


async def test_firing_a_loop_whose_run_goes_waits(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    config = with_triggers(config)
    slow = dataclasses.replace(config.agents["fix-add"], speed=0.2)  # its run lasts seconds
    config = dataclasses.replace(config, agents={**config.agents, "fix-add": slow})
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_loops(app, pilot)
        await select(pilot, screen, "fix-add", "nightly")
        await pilot.press("f")
        # started once its run's first agent turn began (a firing before would fold into it)
        await until(pilot, lambda: [r[3][:11] for r in rows(app, "firings")] == ["started run"])
        run_id = rows(app, "firings")[0][4].split()[0]
        await pilot.press("f")  # its run still goes: the loop's policy (queue) makes it wait
        await until(pilot, lambda: len(rows(app, "firings")) == 2)
        newest = rows(app, "firings")[0]
        assert newest[3:] == ["waiting (for the loop's run to end, or its `when`)", ""]
        assert any(
            n.message.endswith("waiting (for the loop's run to end, or its `when`)")
            for n in app._notifications
        )
        await until(pilot, lambda: "firing #" in str(screen.query_one("#firings-title").render()))
        assert f"1 run going ({run_id})" in str(screen.query_one("#firings-title").render())
        await app.engine.stop(run_id)
        await wait_for_runs(app, pilot, [run_id])


async def test_with_no_loop_configured_the_view_says_where_to_write_them(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, dataclasses.replace(config, loops={}), tmp_path) as (app, pilot):
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, LoopsScreen))
        empty = app.screen.query_one("#no-loops")
        await until(pilot, lambda: empty.display)
        assert "No loops: write them in looptui.toml" in str(empty.render())
        assert not app.screen.query_one("#triggers").display
        assert not app.screen.query_one("#not-scheduled").display
        assert app.screen.check_action("fire", ()) is False
