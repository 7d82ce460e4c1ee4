"""Discoverability: `?` lists every key of the screen, the palette offers every action,
themes load from files and the choice is remembered."""

from __future__ import annotations

from pathlib import Path

import pytest

from looptui.engine.errors import ConfigError
from looptui.tui.screens.help import HelpScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.settings import Settings
from looptui.tui.themes import SEMANTIC_VARIABLES, SHIPPED_THEMES, load_theme, load_themes
from tui_support import demo_repository, open_app, wait_for_runs


async def test_help_lists_every_described_key_of_the_screen(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = dict(app.screen.keys())
        descriptions = set(listed.values())
        for expected in (
            "Start a run of a loop",
            "Show only runs matching some words",
            "Runs waiting for your review",
            "Every key of this screen",
        ):
            assert expected in descriptions
        assert any(
            desc.startswith("The card before") and "h" in keys.split()
            for keys, desc in listed.items()
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_palette_offers_the_screens_actions(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunScreen)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Review", "Expand tools", "Diff", "Needs you", "Quit"} <= titles
        assert "Stop" not in titles  # the run is over: the action does not apply
        [review] = [c for c in app.get_system_commands(app.screen) if c.title == "Review"]
        review.callback()
        await pilot.pause(0.5)
        assert type(app.screen).__name__ == "ReviewScreen"


def test_shipped_themes_define_every_semantic_colour() -> None:
    themes, errors = load_themes([SHIPPED_THEMES])
    assert errors == []
    assert {theme.name for theme in themes} >= {"looptui-dusk", "looptui-paper"}
    for theme in themes:
        assert set(SEMANTIC_VARIABLES) <= set(theme.variables), theme.name


def test_a_broken_theme_file_is_a_one_line_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[colors]\nprimary = 12\n')
    with pytest.raises(ConfigError, match=r"broken.toml: primary: expected a colour"):
        load_theme(broken)
    broken.write_text('name = "x"\n[colors]\nprimary = "not-a-colour"\n')
    with pytest.raises(ConfigError, match=r"broken.toml"):
        load_theme(broken)


async def test_a_user_theme_loads_and_the_choice_is_remembered(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        assert app.theme == "looptui-dusk"
        assert app.get_css_variables()["verdict-pass"] == "#9ece6a"
        app.theme = "textual-light"  # a built-in: looptui's colours come from its own
        await pilot.pause()
        variables = app.get_css_variables()
        assert variables["verdict-pass"] == variables["success"]
    assert Settings.load(tmp_path / "settings.toml").theme == "textual-light"
    async with open_app(repo, config, tmp_path) as (app, pilot):
        assert app.theme == "textual-light"
