"""The grid: cards from the store and from live runs, navigation, filter, grouping, actions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input

from looptui.engine import RunStatus
from looptui.tui.board import RunSummary
from looptui.tui.screens.confirm import ConfirmScreen
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.new_run import NewRunScreen
from tui_support import demo_repository, open_app, statuses, until, wait_for_runs


async def start_all(app, loops=("fix-add", "fix-mean", "docs", "speedup")) -> list[str]:  # type: ignore[no-untyped-def]
    return [(await app.engine.start_run(loop)).id for loop in loops]


def snapshot_of(summary: RunSummary) -> tuple[object, ...]:
    return (summary.status, summary.iteration, summary.run.diff, summary.verdict)


async def test_live_runs_appear_as_cards_and_end_with_their_status(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        assert isinstance(app.screen, GridScreen)
        run_ids = await start_all(app)
        await wait_for_runs(app, pilot, run_ids)
        cards = {summary.run.loop: summary for summary in app.screen.cards.runs}
        assert set(cards) == {"fix-add", "fix-mean", "docs", "speedup"}
        assert statuses(app) == {
            "fix-add": RunStatus.SUCCEEDED,
            "fix-mean": RunStatus.SUCCEEDED,
            "docs": RunStatus.SUCCEEDED,
            "speedup": RunStatus.STALLED,
        }
        assert cards["fix-mean"].iteration == 2
        assert cards["fix-mean"].verdict is not None
        assert cards["fix-mean"].verdict.done
        assert cards["fix-add"].run.diff.added == 2
        index = app.screen.cards.runs.index(cards["fix-add"])
        drawn = "\n".join(strip.text for strip in app.screen.cards._card_lines(index))
        assert cards["fix-add"].id in drawn and "iteration" in drawn
        title = str(app.screen.query_one("#title").render())
        assert "4 runs" in title and "4 need you" in title


async def test_past_runs_are_rebuilt_from_the_store(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run_ids = await start_all(app)
        await wait_for_runs(app, pilot, run_ids)
        before = {
            s.id: (s.status, s.iteration, s.run.diff, s.verdict)
            for s in app.board.summaries.values()
        }
        last_lines = {s.id: s.last_line for s in app.board.summaries.values()}
    async with open_app(repo, config, tmp_path) as (app, pilot):
        after = {
            s.id: (s.status, s.iteration, s.run.diff, s.verdict)
            for s in app.board.summaries.values()
        }
        assert after == before
        assert {s.id: s.last_line for s in app.board.summaries.values()} == last_lines
        assert len(app.screen.cards.runs) == 4


async def test_arrows_and_hjkl_move_between_cards(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(160, 50)) as (app, pilot):
        await wait_for_runs(app, pilot, await start_all(app))
        grid = app.screen.cards
        assert app.focused is grid
        grid.select(grid.runs[0].id)  # the cursor stayed on its run as newer runs came first
        assert grid.cursor == 0
        await pilot.press("l")
        assert grid.cursor == 1
        await pilot.press("right")
        assert grid.cursor == 2
        await pilot.press("j")  # three columns at 160 wide: the fourth card is below the first
        assert grid.cursor == 3
        await pilot.press("k")
        assert grid.cursor == 0
        await pilot.press("h")
        assert grid.cursor == 0


async def test_filter_shows_matching_cards_and_escape_clears_it(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        await wait_for_runs(app, pilot, await start_all(app))
        await pilot.press("slash", *"fix", "enter")
        await pilot.pause()
        loops = sorted(summary.run.loop for summary in app.screen.cards.runs)
        assert loops == ["fix-add", "fix-mean"]
        assert app.focused is app.screen.cards
        await pilot.press("slash", *"fix stalled", "enter")  # every word must match
        await pilot.pause()
        assert len(app.screen.cards.runs) == 0
        assert isinstance(app.focused, Input)  # nothing to go back to: the words stay editable
        await pilot.press("escape", "slash", *"stalled", "enter")
        await pilot.pause()
        assert [summary.run.loop for summary in app.screen.cards.runs] == ["speedup"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen.cards.runs) == 4


async def test_letters_typed_in_the_same_instant_as_slash_go_to_the_filter(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        await wait_for_runs(app, pilot, await start_all(app))
        grid = app.screen.cards
        assert app._driver is not None
        for key, character in (("slash", "/"), ("l", "l"), ("o", "o")):  # one burst, as a
            app._driver.send_message(events.Key(key, character))  # fast typist sends it
        await pilot.pause()
        assert app.screen.query_one("#filter", Input).value == "lo"
        assert grid.cursor == 0  # `l` did not move the cursor on its way
        await pilot.press("slash")  # in the filter, `/` is a character
        assert app.screen.query_one("#filter", Input).value == "lo/"


async def test_grouping_cycles_by_loop_and_by_status(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        await wait_for_runs(app, pilot, await start_all(app))
        await pilot.press("g")
        await pilot.pause()
        titles = [(title, len(members)) for title, members in app.screen.cards.groups]
        assert titles == [("docs", 1), ("fix-add", 1), ("fix-mean", 1), ("speedup", 1)]
        await pilot.press("g")
        await pilot.pause()
        titles = [(title, len(members)) for title, members in app.screen.cards.groups]
        assert titles == [("succeeded", 3), ("stalled", 1)]  # in the order of a run's life
        await pilot.press("g")
        await pilot.pause()
        assert [title for title, _ in app.screen.cards.groups] == [""]


async def test_new_run_dialog_starts_a_run_with_another_prompt(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        dialog = app.screen
        from textual.widgets import Select, TextArea

        dialog.query_one("#loop", Select).value = "docs"
        await pilot.pause()
        dialog.query_one("#prompt", TextArea).text = "Document add() only."
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, GridScreen)
        [run] = await app.engine.store.runs()
        assert run.loop == "docs" and run.prompt == "Document add() only."
        await wait_for_runs(app, pilot, [run.id])
        assert len(app.screen.cards.runs) == 1


async def test_stop_and_retry_from_the_grid(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    slow = {name: dataclasses.replace(a, speed=0.05) for name, a in config.agents.items()}
    config = dataclasses.replace(config, agents=slow)
    async with open_app(repo, config, tmp_path) as (app, pilot):
        [run_id] = await start_all(app, ["fix-add"])
        await pilot.pause(0.5)
        app.screen.cards.select(run_id)
        await pilot.press("s")
        final = await app.engine.wait(run_id)
        assert final.status is RunStatus.CANCELLED
        await pilot.pause(0.4)
        await pilot.press("R")
        await pilot.pause(0.4)
        runs = await app.engine.store.runs()
        assert len(runs) == 2 and {r.loop for r in runs} == {"fix-add"}
        assert len(app.screen.cards.runs) == 2


async def test_without_loops_new_run_explains_what_to_do(tmp_path: Path) -> None:
    repo, _ = demo_repository(tmp_path / "demo")
    async with open_app(repo, None, tmp_path) as (app, pilot):
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, GridScreen)
        assert any("looptui init" in n.message for n in app._notifications)
        assert "No runs yet" in str(app.screen.query_one("#empty").render())


async def test_finished_runs_are_announced(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run_ids = await start_all(app, ["fix-add", "speedup"])
        await wait_for_runs(app, pilot, run_ids)
        messages = [(n.message, n.severity) for n in app._notifications]
        assert any("ready for your review" in m and s == "information" for m, s in messages)
        assert any("speedup" in m and "stalled" in m and s == "warning" for m, s in messages)


async def test_quitting_with_runs_going_asks_first(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    slow = {name: dataclasses.replace(a, speed=0.05) for name, a in config.agents.items()}
    config = dataclasses.replace(config, agents=slow)
    async with open_app(repo, config, tmp_path) as (app, pilot):
        [run_id] = await start_all(app, ["fix-add"])
        await pilot.pause(0.3)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "1 run is still going" in (
            app.screen.question
        )
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, GridScreen) and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running
    assert (await _status_after_close(repo, run_id)) is RunStatus.CANCELLED


async def _status_after_close(repo: Path, run_id: str) -> RunStatus:
    from conftest import cli_env
    from looptui.engine import Engine

    engine = await Engine.open(repo, cli_env(), None)
    try:
        return (await engine.store.run(run_id)).status
    finally:
        await engine.close()


def test_outside_a_repository_the_app_does_not_open(tmp_path: Path) -> None:
    from conftest import run_cli

    result = run_cli(tmp_path)
    assert result.code == 2
    assert result.stderr.startswith("looptui: ") and len(result.stderr.strip().splitlines()) == 1
    assert "git repository" in result.stderr


async def test_arrows_move_the_cursor_in_a_small_terminal_and_keep_it_in_view(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        run_ids = await start_all(app, ["docs"] * 6)
        await wait_for_runs(app, pilot, run_ids)
        grid = app.screen.cards
        grid.select(grid.runs[0].id)
        for expected in range(1, 6):  # one column at 80 wide: down is the next card
            await pilot.press("down")
            assert grid.cursor == expected
        top = grid.scroll_offset.y
        assert top > 0  # scrolled to keep the cursor's card in view
        await pilot.press("up", "up")
        assert grid.cursor == 3
        await pilot.press("slash", "j", "k")  # j and k are letters in the filter
        assert app.screen.query_one("#filter", Input).value == "jk"


@pytest.mark.parametrize("keys", [("R",), ("n", "ctrl+s")], ids=["retry", "new-run"])
async def test_at_80x24_the_card_of_a_run_just_started_is_in_view_whole(
    tmp_path: Path, keys: tuple[str, ...]
) -> None:
    """The new run's card is the first; selecting it scrolls the grid up to it, even though
    laying out the cards again kept the one selected before (the last) where it was."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        run_ids = await start_all(app)
        await wait_for_runs(app, pilot, run_ids)
        grid = app.screen.cards
        grid.select(next(s.id for s in grid.runs if s.run.loop == "fix-add"))
        await until(pilot, lambda: grid.scroll_offset.y > 0)  # the last card, at the bottom
        for key in keys:
            await pilot.press(key)
        await until(pilot, lambda: len(grid.runs) == 5)
        new = grid.runs[0]
        assert new.id not in run_ids
        await wait_for_runs(app, pilot, [new.id])
        assert grid.selected is not None and grid.selected.id == new.id and grid.has_focus
        view = grid.scrollable_content_region.at_offset(grid.scroll_offset)
        card = grid._card_region(grid.cursor, titled=False)
        assert view.contains_region(card), (card, view)
        top = grid.render_line(card.y - grid.scroll_offset.y).text
        assert top.lstrip().startswith("┏━ " + new.run.loop)  # its border, drawn as selected


async def test_home_end_and_page_keys_move_the_selection_with_the_view(tmp_path: Path) -> None:
    """They scrolled the grid and left the selection behind, off screen: `enter` then
    opened a card the user could not see."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        run_ids = await start_all(app)
        await wait_for_runs(app, pilot, run_ids)
        grid = app.screen.cards

        def in_view() -> bool:
            view = grid.scrollable_content_region.at_offset(grid.scroll_offset)
            return view.contains_region(grid._card_region(grid.cursor, titled=False))

        await pilot.press("end")
        await until(pilot, lambda: grid.cursor == len(grid.runs) - 1 and in_view())
        await pilot.press("home")
        await until(pilot, lambda: grid.cursor == 0 and in_view() and grid.scroll_offset.y == 0)
        await pilot.press("pagedown")
        await until(pilot, lambda: grid.cursor > 0 and in_view())
        await pilot.press("pageup")
        await until(pilot, lambda: grid.cursor == 0 and in_view())
        await pilot.press("end", "enter")
        await until(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        assert app.screen.run_id == grid.runs[-1].id  # the card the user saw selected
        await pilot.press("escape")
        await pilot.press("slash", "i", "x", "home", "f")  # in the filter, home is its own
        await until(pilot, lambda: app.screen.query_one("#filter", Input).value == "fix")


async def test_runs_of_another_looptui_process_show_up(tmp_path: Path) -> None:
    from conftest import cli_env
    from looptui.engine import Engine

    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        other = await Engine.open(repo, cli_env(), config)  # its own store connections
        try:
            run = await other.start_run("docs")
            await other.wait(run.id)
            await other.merge(run.id)
        finally:
            await other.close()
        await until(
            pilot,
            lambda: (
                run.id in app.board.summaries
                and app.board.summaries[run.id].status is RunStatus.MERGED
            ),
            limit=10,
        )
        await until(pilot, lambda: run.id in {s.id for s in app.screen.cards.runs}, limit=5)
