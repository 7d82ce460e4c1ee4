"""At 80x24 everything needed to act stays in view: `?` and `q` in every footer, cards whole
after the terminal shrinks, the new-run dialog's first field, its prompt and its buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Button, Label, Select, TextArea
from textual.widgets._footer import FooterKey

from looptui.tui.app import LooptuiApp
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.new_run import NewRunScreen
from looptui.tui.screens.quit import QuitScreen
from looptui.tui.widgets.card_grid import CardGrid
from looptui.tui.widgets.footer import KeysFooter
from tui_support import demo_repository, open_app, until, wait_for_runs

LOOPS = ("fix-add", "fix-mean", "docs", "speedup")
Go = Callable[[LooptuiApp, Pilot[None]], Awaitable[None]]


def footer_keys(app: LooptuiApp) -> list[str]:
    """The keys of the footer that are on screen whole, left to right."""
    width = app.size.width
    shown = [
        key
        for key in app.screen.query(FooterKey)
        if key.region.width and key.region.x >= 0 and key.region.right <= width
    ]
    return [key.key for key in sorted(shown, key=lambda key: key.region.x)]


def pressing(*keys: str) -> Go:
    async def go(app: LooptuiApp, pilot: Pilot[None]) -> None:
        grid = app.screen.query_one(CardGrid)
        grid.select(next(s.id for s in grid.runs if s.run.loop == "fix-add"))
        for key in keys:
            await pilot.press(key)
            await pilot.pause()

    return go


async def quitting(app: LooptuiApp, pilot: Pilot[None]) -> None:
    await app.push_screen(QuitScreen(1))


# the screen, how to reach it from the grid, and its own keys for `?` and `q`, if it has them
SCREENS: dict[str, tuple[Go, str]] = {
    "grid": (pressing(), "GridScreen"),
    "run": (pressing("enter"), "RunScreen"),
    "run-diff": (pressing("enter", "2"), "RunScreen"),
    "review": (pressing("enter", "v"), "ReviewScreen"),
    "merge-preview": (pressing("enter", "v", "m"), "MergeScreen"),
    "new-run": (pressing("n"), "NewRunScreen"),
    "help": (pressing("question_mark"), "HelpScreen"),
    "loops": (pressing("L"), "LoopsScreen"),
    "memory": (pressing("m"), "MemoryScreen"),
    "search": (pressing("f", *"mean", "enter"), "SearchScreen"),  # on the hits
    "needs-you": (pressing("r"), "NeedsYouScreen"),
    "quit": (quitting, "QuitScreen"),
}


async def each_screen(app: LooptuiApp, pilot: Pilot[None]) -> AsyncIterator[str]:
    """Every screen of SCREENS in turn, by name, its footer laid out; back to the grid after."""
    for name, (go, screen_name) in SCREENS.items():
        await go(app, pilot)
        try:
            await until(pilot, lambda s=screen_name: type(app.screen).__name__ == s, 5)
        except AssertionError:
            raise AssertionError(f"{name}: {type(app.screen).__name__}") from None
        await until(pilot, lambda: bool(app.screen.query(FooterKey)))
        await pilot.pause()  # the footer's keys, laid out
        yield name
        while not isinstance(app.screen, GridScreen):
            app.pop_screen()
            await pilot.pause()


async def test_question_mark_and_q_are_in_every_footer_at_80x24(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        await wait_for_runs(app, pilot, [(await app.engine.start_run(n)).id for n in LOOPS])
        missing = {}
        async for name in each_screen(app, pilot):
            keys = footer_keys(app)
            # `?` and `q` are first wherever they are the app's; where the screen binds them
            # itself (help: close; quit: quit) its first key is shown and they do that too
            own = {
                key: binding.action
                for key, binding in (
                    (key, binding)
                    for key, bindings in app.screen._bindings.key_to_bindings.items()
                    for binding in bindings
                )
                if key in ("question_mark", "q")
            }
            wanted = [key for key in ("question_mark", "q") if key not in own]
            if keys[: len(wanted)] != wanted:
                missing[name] = keys
        assert not missing


def cut_keys(app: LooptuiApp) -> list[str]:
    """The footer's keys that are not on screen whole: past the edge, or under the
    palette's key at the right end."""
    keys = list(app.screen.query(FooterKey))
    palette = [key for key in keys if key.has_class("-command-palette")]
    right = palette[0].region.x if palette else app.size.width
    return [
        key.key
        for key in keys
        if not key.has_class("-command-palette") and (key.region.right > right or not key.region)
    ]


# what a screen is for, which its footer keeps at 80 columns
MAIN_KEYS = {
    "grid": {"enter", "n"},
    "run": {"v"},
    "review": {"a", "x", "m"},
    "needs-you": {"enter"},
}


async def test_at_80x24_a_footer_shows_keys_whole_and_keeps_each_screens_main_ones(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        await wait_for_runs(app, pilot, [(await app.engine.start_run(n)).id for n in LOOPS])
        found = {}
        async for name in each_screen(app, pilot):
            lacking = MAIN_KEYS.get(name, set()) - set(footer_keys(app))
            if cut_keys(app) or lacking:
                found[name] = (cut_keys(app), lacking)
        assert not found
        await pilot.resize_terminal(160, 50)  # the keys left out come back
        await until(pilot, lambda: {"f", "L", "m"} <= set(footer_keys(app)))
        assert not cut_keys(app)


async def test_in_the_grid_filter_the_footer_offers_its_way_out(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        await wait_for_runs(app, pilot, [(await app.engine.start_run("fix-add")).id])
        assert "escape" not in footer_keys(app)  # no filter: nothing to clear
        await pilot.press("slash", "f", "/", "x")
        await until(pilot, lambda: footer_keys(app) == ["escape", "ctrl+p"])
        assert app.screen.query_one("#filter").value == "f/x"  # `/` typed, not a key
        await pilot.press("escape")
        await until(pilot, lambda: footer_keys(app)[:2] == ["question_mark", "q"])
        assert "escape" not in footer_keys(app)


async def test_help_and_quit_bind_question_mark_and_q_themselves(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        assert footer_keys(app)[0] == "escape"  # close; `?` and `q` close too
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, GridScreen))
        await app.push_screen(QuitScreen(1))
        await until(pilot, lambda: bool(footer_keys(app)))
        assert footer_keys(app)[:2] == ["question_mark", "q"]  # `q` here: quit, runs go on


async def test_in_a_text_box_the_footer_does_not_offer_keys_that_would_be_typed(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        await wait_for_runs(app, pilot, [(await app.engine.start_run("fix-add")).id])
        await pressing("enter", "v", "c")(app, pilot)
        await until(pilot, lambda: type(app.screen).__name__ == "CommentScreen")
        await until(pilot, lambda: bool(app.screen.query(FooterKey)))
        keys = footer_keys(app)
        assert "escape" in keys and "q" not in keys and "question_mark" not in keys
        await pilot.press("q", "question_mark")  # typed into the comment
        await pilot.pause()
        assert type(app.screen).__name__ == "CommentScreen"


def broken_cards(grid: CardGrid) -> list[str]:
    """The lines of the grid where a card's border does not close within the grid."""
    ends = {"┏": "┓", "╭": "╮", "┃": "┃", "│": "│", "┗": "┛", "╰": "╯"}
    width = grid.scrollable_content_region.width
    broken = []
    for y in range(grid.scrollable_content_region.height):
        text = grid.render_line(y).text.rstrip()
        cells = [text[i : i + grid._card_width] for i in range(0, len(text), grid._card_width + 1)]
        for cell in cells:
            if cell and cell[0] in ends and (cell[-1] != ends[cell[0]] or len(text) > width):
                broken.append(text)
    return broken


@pytest.mark.parametrize("elsewhere", [False, True], ids=["on-the-grid", "from-a-run"])
async def test_shrinking_the_terminal_redraws_the_cards_whole(
    tmp_path: Path, elsewhere: bool
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(160, 50)) as (app, pilot):
        await wait_for_runs(app, pilot, [(await app.engine.start_run(n)).id for n in LOOPS])
        grid = app.screen.query_one(CardGrid)
        assert grid._columns == 3 and not broken_cards(grid)
        if elsewhere:  # the grid is under another screen while the terminal shrinks
            await pilot.press("enter")
            await until(pilot, lambda: not isinstance(app.screen, GridScreen))
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        if elsewhere:
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, GridScreen))
        await until(pilot, lambda: grid._columns == 1)  # laid out again for 80 columns
        assert grid._columns == 1
        assert grid.region.right <= 80
        assert not broken_cards(grid)
        drawn = [grid.render_line(y).text for y in range(grid.scrollable_content_region.height)]
        assert sum(line.lstrip().startswith(("┏", "╭")) for line in drawn) >= 3


async def test_a_wide_grid_footer_offers_search_loops_and_memory(tmp_path: Path) -> None:
    """At 160 columns the grid's footer has room for every key of the grid's own screens;
    at 80 they are the first cut (`?` lists them), `?` and `q` kept."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(160, 50)) as (app, pilot):
        await wait_for_runs(app, pilot, [(await app.engine.start_run("docs")).id])
        await until(pilot, lambda: {"f", "L", "m"} <= set(footer_keys(app)), 10)
        assert footer_keys(app)[:2] == ["question_mark", "q"]
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: "m" not in footer_keys(app))
        assert footer_keys(app)[:2] == ["question_mark", "q"]


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_the_new_run_dialog_opens_with_its_label_prompt_and_buttons_in_view(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """Its first label and field in view, and the prompt the dialog says to leave as is
    readable before tabbing into it: at least three of its lines, the buttons below."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=size) as (app, pilot):
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewRunScreen))
        dialog = app.screen
        await until(pilot, lambda: app.focused is dialog.query_one("#loop", Select))
        await pilot.pause()  # the frame after focusing: where the fields have scrolled to
        fields = dialog.query_one("#fields", VerticalScroll)
        label = dialog.query(Label).first()
        assert str(label.render()) == "Loop"
        view = fields.scrollable_content_region
        assert label.region.height and view.contains_region(label.region), (label.region, view)
        assert view.contains_region(dialog.query_one("#loop", Select).region)  # and its field
        prompt = dialog.query_one("#prompt", TextArea)
        assert prompt.text == config.loops["docs"].prompt  # the first loop's
        assert prompt.scrollable_content_region.height >= 3, prompt.scrollable_content_region
        assert view.contains_region(prompt.region), (prompt.region, view)
        box = dialog.query_one(".dialog-box").region
        footer = dialog.query_one(KeysFooter).region
        for button in dialog.query(Button):
            assert button.region.height and box.contains_region(button.region), button.id
            assert button.region.bottom <= footer.y, button.id
