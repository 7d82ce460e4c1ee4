"""Issue 13, item 7: the app says a thing once, keeps the cursor where the user put it, and
agrees with itself and with the README on every key and name."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path

from textual.widgets import Static

from conftest import git
from looptui.engine import RunStatus
from looptui.engine.models import Run
from looptui.tui.board import Board, RunSummary
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.help import HelpScreen
from looptui.tui.screens.loops import LoopsScreen
from looptui.tui.screens.merge import MergeScreen
from looptui.tui.screens.needs_you import NeedsYouScreen
from looptui.tui.screens.review import ReviewScreen
from looptui.tui.screens.search import SearchScreen
from looptui.tui.widgets.card_grid import CardGrid
from test_tui_narrow import footer_keys
from test_tui_review import review_finished_run, review_from_queue
from tui_support import demo_repository, open_app, plain, until, wait_for_runs

README = Path(__file__).parent.parent / "README.md"


async def test_a_run_the_base_already_holds_previews_nothing_to_merge(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run, _screen = await review_finished_run(app, pilot, "fix-add")
        git(repo, "merge", "-q", "--no-edit", run.branch)  # by hand: main holds it all now
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        said = " ".join(plain(s.render()) for s in app.screen.query(Static))
        assert "nothing to merge" in said and "merges cleanly" not in said
        await pilot.press("y")  # nothing to confirm
        assert isinstance(app.screen, MergeScreen)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        assert not any("nothing to merge" in n.message for n in app._notifications)
        assert app.board.summaries[run.id].status is RunStatus.SUCCEEDED


async def test_a_run_that_changed_nothing_says_so_up_front(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("speedup")  # stalls with no change
        await wait_for_runs(app, pilot, [run.id])
        cards = app.screen.query_one(CardGrid)
        card = "\n".join(strip.text for strip in cards._card_lines(0))
        assert "no change" in card and "in 0 files" not in card  # not "+0 −0 in 0 files"
        app.review_run(run.id)
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.is_mounted)
        screen = app.screen
        assert run.diff.files == 0 or (await app.engine.history.run(run.id)).diff.files == 0
        line = screen.query_one("#review-verdict", Static)
        await until(pilot, lambda: "nothing to merge" in plain(line.render()))
        assert not screen.check_action("merge", (False,))
        assert not screen.check_action("edit", ())  # no file to open either
        # nothing to decide either: the footer offers no key that would do nothing
        await until(pilot, lambda: "d" in footer_keys(app))
        assert not {"a", "x", "enter", "c", "m", "down", "J"} & set(footer_keys(app))
        assert "escape" in footer_keys(app)
        await pilot.press("m")
        await pilot.pause()
        assert app.screen is screen  # no preview that would merge nothing


async def test_an_empty_queue_offers_nothing_to_open_and_help_names_it_in_words(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, NeedsYouScreen))
        await until(pilot, lambda: "escape" in footer_keys(app))
        assert not {"o", "enter"} & set(footer_keys(app))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        box = app.screen.query_one(".dialog-box")
        assert box.border_title == "Keys · Needs you"
        await pilot.press("escape")
        run = await app.engine.start_run("docs")  # one to review: the keys come back
        await until(pilot, lambda: "enter" in footer_keys(app) and "o" in footer_keys(app))
        assert app.board.summaries[run.id].status is RunStatus.SUCCEEDED


async def test_merging_from_the_queue_comes_back_to_it_naming_the_run(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        runs = [await app.engine.start_run(loop) for loop in ("fix-add", "docs")]
        await wait_for_runs(app, pilot, [run.id for run in runs])
        await review_from_queue(app, pilot, "fix-add")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, NeedsYouScreen))
        await until(pilot, lambda: app.board.summaries[runs[0].id].status is RunStatus.MERGED)
        queue = app.screen
        await until(
            pilot, lambda: [o.id for o in queue.query_one("#queue").options] == [runs[1].id]
        )
        [toast] = [n.message for n in app._notifications if n.message.startswith("merged")]
        assert f"fix-add {runs[0].id}" in toast


async def test_new_and_retried_runs_are_selected_and_cards_keep_their_place(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        runs = [await app.engine.start_run(loop) for loop in ("fix-add", "docs", "speedup")]
        grid = app.screen
        assert isinstance(grid, GridScreen)
        await until(pilot, lambda: len(grid.cards.runs) == 3)
        grid.cards.select(runs[1].id)
        order = [s.id for s in grid.cards.runs]
        place = grid.cards.cursor
        await wait_for_runs(app, pilot, [run.id for run in runs])  # every status changes
        assert [s.id for s in grid.cards.runs] == order
        assert grid.cards.cursor == place and grid.selected().id == runs[1].id
        await pilot.press("R")
        await until(pilot, lambda: len(grid.cards.runs) == 4)
        retried = grid.selected()
        assert retried.id not in order and retried.run.loop == "docs"
        assert grid.cards.has_focus
        grid.cards.select(runs[0].id)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is not grid)
        await pilot.press("ctrl+s")  # the dialog's first loop, as it is
        await until(pilot, lambda: len(grid.cards.runs) == 5)
        await until(pilot, lambda: grid.selected().id not in {*order, retried.id})


def card_row(cards: CardGrid, run_id: str) -> int | None:
    """The line of the grid, as drawn on screen, that holds the run's card's bottom border
    (where its id is)."""
    for y in range(cards.scrollable_content_region.height):
        text = cards.render_line(y).text
        if f" {run_id} " in text and ("╰" in text or "┗" in text):
            return y
    return None


async def test_grouped_by_status_a_run_that_moves_group_leaves_the_cursor_in_place(
    tmp_path: Path,
) -> None:
    """lazygit's and k9s's way: the cursor stays on its run, and that run's card stays where
    the user's eyes are, while other runs change group around it. The groups follow a run's
    life: succeeded before stalled before discarded."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        docs = [(await app.engine.start_run("docs")).id for _ in range(7)]
        speedup = (await app.engine.start_run("speedup")).id
        await wait_for_runs(app, pilot, [*docs, speedup])
        grid = app.screen
        assert isinstance(grid, GridScreen)
        await pilot.press("g", "g")
        await until(pilot, lambda: [t for t, _ in grid.cards.groups] == ["succeeded", "stalled"])
        for run_id in docs[:4]:
            await app.engine.discard(run_id, force=True)
        await until(
            pilot,
            lambda: (
                [(t, len(m)) for t, m in grid.cards.groups]
                == [("succeeded", 3), ("stalled", 1), ("discarded", 4)]
            ),
        )
        grid.cards.select(docs[1])  # newest first: the third of the discarded, one below it
        await pilot.press("up")  # a card in the middle of the view, more cards below
        chosen = grid.selected()
        assert chosen is not None and chosen.id == docs[2]
        await pilot.pause()
        row = card_row(grid.cards, chosen.id)
        assert row is not None
        await app.engine.discard(speedup, force=True)  # the group above it goes
        await until(pilot, lambda: "stalled" not in [t for t, _ in grid.cards.groups])
        await pilot.pause()  # the frame after: what the user sees
        assert grid.selected() is chosen
        assert card_row(grid.cards, chosen.id) == row
        first = docs[6]  # the newest run that succeeded: at the top of its group
        grid.cards.select(first)
        await pilot.press("g", "g", "g")  # by nothing, by loop, by status again
        await until(pilot, lambda: "succeeded" in [t for t, _ in grid.cards.groups])
        await pilot.pause()
        bottom = card_row(grid.cards, first)
        assert bottom is not None and bottom >= 6  # kept in view, and under its group's title
        assert grid.cards.render_line(bottom - 6).text.strip().startswith("succeeded (3)  ·  ")


async def test_grouped_by_status_the_cursor_stays_on_its_run_while_runs_go_by(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    paced = {name: dataclasses.replace(agent, speed=2) for name, agent in config.agents.items()}
    config = dataclasses.replace(config, agents=paced)  # seconds long: statuses change live
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        grid = app.screen
        assert isinstance(grid, GridScreen)
        loops = ("fix-add", "fix-mean", "docs", "speedup")
        runs = [(await app.engine.start_run(loop)).id for loop in loops * 2]
        await until(pilot, lambda: len(grid.cards.runs) == len(runs))
        await pilot.press("g", "g")
        grid.cards.select(runs[2])
        seen: set[tuple[str, ...]] = set()
        while any(app.board.summaries[run_id].status.is_active for run_id in runs):
            selected = grid.selected()
            assert selected is not None and selected.id == runs[2]
            seen.add(tuple(t for t, _ in grid.cards.groups))
            await pilot.pause()  # the next frame: each one is sampled
        assert len(seen) > 2  # the runs did move between groups under it
        await wait_for_runs(app, pilot, runs)
        assert grid.selected().id == runs[2]  # type: ignore[union-attr]
        assert card_row(grid.cards, runs[2]) is not None  # and in view


def test_runs_created_in_the_same_instant_keep_their_places() -> None:
    runs = [
        Run(f"{n:08x}", "docs", "replay", RunStatus.SUCCEEDED, "", "main", "0" * 40, "", "", 3)
        for n in (3, 0, 5, 1, 4, 2)
    ]
    runs = [dataclasses.replace(run, created_at=5.0) for run in runs]  # all in one instant
    orders = set()
    for arrival in (runs, runs[::-1], runs[2:] + runs[:2]):  # from the store, live, resynced
        board = Board()
        for run in arrival:
            board.add(RunSummary(run=run))
        orders.add(tuple(s.id for s in board.ordered()))
    assert len(orders) == 1


async def test_a_theme_change_repaints_every_card(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        runs = [(await app.engine.start_run(loop)).id for loop in ("fix-add", "docs", "speedup")]
        await wait_for_runs(app, pilot, runs)
        cards = app.screen.query_one(CardGrid)

        def drawn() -> tuple[set[str], set[str]]:
            """The background and text colours of every cell of the cards on screen."""
            backgrounds, colours = set(), set()
            for y in range(cards.scrollable_content_region.height):
                for segment in cards.render_line(y):
                    style = segment.style
                    if style is not None and style.bgcolor is not None:
                        backgrounds.add(style.bgcolor.triplet.hex)  # type: ignore[union-attr]
                    if style is not None and style.color is not None and segment.text.strip():
                        colours.add(style.color.triplet.hex)  # type: ignore[union-attr]
            return backgrounds, colours

        assert app.theme == "looptui-dusk"
        await until(pilot, lambda: len(cards._cards) >= len(runs))  # drawn, and kept
        backgrounds, colours = drawn()
        assert "#1f2335" in backgrounds and "#9ece6a" in colours  # dusk's surface, its pass
        app.theme = "looptui-paper"
        await until(pilot, lambda: "#f2f0ea" in drawn()[0], 10)  # paper's surface
        backgrounds, colours = drawn()
        assert not backgrounds & {"#1f2335", "#16161e"}, backgrounds  # no dusk left anywhere
        assert "#9ece6a" not in colours and "#1a7f37" in colours  # paper's pass: the cards'
        assert {s.id for s in cards.runs} == set(runs)


async def test_help_on_the_grid_says_what_the_arrows_do_looptuis_keys_first(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = app.screen.keys()
        by_key = {key: description for keys, description in listed for key in keys.split()}
        assert by_key["←"].startswith("The card before") and by_key["h"] == by_key["←"]
        assert by_key["→"].startswith("The card after") and by_key["l"] == by_key["→"]
        assert "Scroll" not in by_key["←"]
        descriptions = [description for _, description in listed]
        last_own = descriptions.index("Every key of this screen")
        first_textual = descriptions.index("Focus Next")
        assert last_own < first_textual
        await pilot.press("escape")
        await pilot.press("left")  # and it does it
        assert app.screen.query_one("#cards").cursor == 0


async def test_the_palette_offers_every_looptui_action_from_any_screen(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        app.review_run(run.id)
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
        commands = list(app.get_system_commands(app.screen))
        titles = [command.title for command in commands]
        wanted_titles = ("Merge", "Open in editor", "New run", "Loops", "Search runs", "Needs you")
        for wanted in (*wanted_titles, "Theme"):
            assert wanted in titles, wanted
        assert "Memory of fix-add" in titles
        assert titles.count("Quit") == 1 and titles.count("Keys") == 1
        assert titles.index("Search runs") < titles.index("Theme")  # looptui's first
        [loops] = [c for c in commands if c.title == "Loops"]
        loops.callback()
        await until(pilot, lambda: isinstance(app.screen, LoopsScreen))


async def test_the_grid_reviews_the_selected_run_by_v_and_by_the_palette(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        grid = app.screen
        assert isinstance(grid, GridScreen)
        [review] = [c for c in app.get_system_commands(grid) if c.title == "Review"]
        review.callback()  # "review" typed into the palette on the grid
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        assert app.screen.run_id == run.id
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is grid)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen))
        assert app.screen.run_id == run.id


README_KEYS = {"esc": "escape", "/": "slash", "!": "exclamation_mark", "?": "question_mark"}


def readme_keys() -> dict[str, set[str]]:
    """Each screen of the README's keys table, with every key its row names."""
    table: dict[str, set[str]] = {}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("screen", "---"):
            continue
        keys: set[str] = set()
        text = cells[2]
        for first, last in re.findall(r"`(\d)`–`(\d)`", text):
            keys |= {str(n) for n in range(int(first), int(last) + 1)}
        for token in re.findall(r"`([^`]+)`", text):
            if token.startswith("$"):
                continue
            if token == "hjkl":
                keys |= set("hjkl")
            else:
                keys.add(README_KEYS.get(token, token))
        if "arrows" in text:
            keys |= {"up", "down", "left", "right"}
        table[cells[0]] = keys
    return table


async def test_the_readme_keys_table_agrees_with_the_screens(tmp_path: Path) -> None:
    table = readme_keys()
    assert set(table) == {"grid", "run", "memory", "review", "search", "needs you", "loops"}
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        openers = {
            "run": lambda: app.open_run(run.id),
            "memory": lambda: app.open_memory("fix-add"),
            "review": lambda: app.review_run(run.id),
            "search": lambda: app.push_screen(SearchScreen()),
            "needs you": lambda: app.push_screen(NeedsYouScreen()),
            "loops": lambda: app.push_screen(LoopsScreen()),
        }
        for name, keys in table.items():
            if name != "grid":
                before = app.screen
                opened = openers[name]()
                if opened is not None:
                    await opened
                await until(pilot, lambda before=before: app.screen is not before)
            screen = app.screen

            def bound(screen: object = screen) -> set[str]:
                return {
                    binding.key
                    for node in (app, screen, *screen.walk_children())  # type: ignore[attr-defined]
                    for bindings in node._bindings.key_to_bindings.values()
                    for binding in bindings
                }

            # the screen's widgets mount in turn: wait for them, then hold the table to them
            with contextlib.suppress(AssertionError):
                await until(pilot, lambda keys=keys: keys <= bound(), 10)
            assert keys <= bound(), (name, keys - bound())
            if name != "grid":
                await app.pop_screen()
    readme = README.read_text()
    assert '"Theme"' in readme and '"Memory of <loop>"' in readme  # the palette's names
