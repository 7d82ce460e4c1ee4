"""The run screen's Prompt tab (each iteration's prompt, as stored, live) and `/` in the log
(find a word, `n` / `N` to the next and previous match, escape to close)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Collapsible, Static, TabbedContent

from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.help import HelpScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.evidence import PromptView
from looptui.tui.widgets.log_search import SearchBar, find, rank
from looptui.tui.widgets.run_log import RunLog
from test_tui_run import open_run_of
from tui_support import demo_repository, open_app, until


def prompt_texts(view: PromptView) -> list[tuple[str, bool, str]]:
    """(title, folded, prompt text) of each iteration shown, top first."""
    return [
        (
            str(c.title),
            c.collapsed,
            str(c.query_one(".prompt-text", Static).render()),
        )
        for c in view.query(".iteration-prompt").results(Collapsible)
        # one still being mounted (a new iteration's) has no text yet: not shown yet
        if c.query(".prompt-text")
    ]


async def test_the_prompt_tab_shows_each_stored_prompt_newest_first_and_live(
    tmp_path: Path,
) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "fix-mean")
        await pilot.press("5")
        view = screen.query_one(PromptView)
        await until(pilot, lambda: len(prompt_texts(view)) == 2)
        assert screen.query_one(TabbedContent).active == "prompt"
        stored = await app.engine.history.iterations(screen.run_id)
        shown = prompt_texts(view)
        assert [title.split(" · ")[0] for title, _, _ in shown] == ["Iteration 2", "Iteration 1"]
        assert [folded for _, folded, _ in shown] == [False, True]  # the newest open
        assert [text for _, _, text in shown] == [stored[1].prompt, stored[0].prompt]
        assert "## Failing checks" in shown[0][2]  # what iteration 2 was told of iteration 1

        # a new iteration (feedback continues the run): its prompt shows while the tab does
        run = await app.engine.feedback(screen.run_id, "Name the empty list in the message.")
        await until(pilot, lambda: len(prompt_texts(view)) == 3)
        newest = prompt_texts(view)[0]
        assert newest[0].startswith("Iteration 3") and not newest[1]
        assert newest[2].startswith("## Feedback from the human")
        assert "Name the empty list in the message." in newest[2]
        await app.engine.wait(run.id)


def log_lines(log: RunLog) -> list[str]:
    return [strip.text for strip in log.lines]


def highlighted(log: RunLog) -> str:
    """The text drawn with the match style on the match's line."""
    assert log.match is not None
    index = log.match.line - log._first_line
    strip = log.strip(index)
    style = log.get_component_rich_style("run-log--match", partial=True)
    return "".join(
        segment.text
        for segment in strip
        if segment.style and segment.style.reverse == style.reverse
    )


async def test_slash_finds_a_word_in_the_log_and_n_and_shift_n_go_on(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "docs")
        log = screen.query_one(RunLog)
        lines = log_lines(log)
        holding = [i for i, line in enumerate(lines) if "check" in line.lower()]
        assert len(holding) >= 2

        await pilot.press("slash")
        bar = screen.query_one(SearchBar)
        assert bar.shown and bar.has_focus
        await pilot.press("C", "h", "e", "c", "k", "enter")  # ignoring case
        await pilot.pause()
        assert log.has_focus and log.match is not None
        first = log.match.line - log._first_line
        assert first == holding[0]  # from the top of the view (the whole log fits)
        assert highlighted(log).lower() == "check"
        total = sum(line.lower().count("check") for line in lines)
        assert bar.border_subtitle == f"1/{total}"  # which match, of how many

        await pilot.press("n")
        await pilot.pause()
        second = log.match.line - log._first_line
        assert second > first and "check" in lines[second][log.match.start :].lower()
        assert highlighted(log).lower() == "check"
        assert bar.border_subtitle == f"2/{total}"
        await pilot.press("N")
        await pilot.pause()
        assert log.match.line - log._first_line == first  # back where it was
        assert bar.border_subtitle == f"1/{total}"

        # a word that is nowhere says so, and keeps the bar for another try
        await pilot.press("slash")
        bar.value = ""
        await pilot.press("z", "q", "x", "enter")
        await pilot.pause()
        assert log.match is None and bar.has_focus
        assert any("no match for 'zqx'" in n.message for n in app._notifications)
        assert bar.border_subtitle == "no match"

        await pilot.press("escape")  # closes the search, stays on the screen
        await pilot.pause()
        assert not bar.shown and isinstance(app.screen, RunScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, GridScreen)


async def test_the_search_keys_are_listed_and_belong_to_the_log(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "fix-add")
        titles = {command.title for command in app.get_system_commands(screen)}
        assert {"Find", "Prompt"} <= titles
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = dict(app.screen.keys())
        assert (
            listed["/"] == "Find a word in the log"
            and listed["5"] == "The prompt each iteration was given"
        )
        assert listed["n"] == "Next match" and listed["N"] == "Previous match"
        await pilot.press("escape")
        await pilot.press("2")  # the diff: `/` is the log's alone
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(screen)}
        assert "Find" not in titles and "Next match" not in titles
        await pilot.press("slash")
        await pilot.pause()
        assert not screen.query_one(SearchBar).shown


def test_rank_counts_matches_in_reading_order() -> None:
    lines = ["alpha beta", "gamma", "beta beta", "delta"]
    assert rank(lines, "BETA", 0, 6) == (1, 3)
    assert rank(lines, "beta", 2, 0) == (2, 3)
    assert rank(lines, "beta", 2, 5) == (3, 3)
    assert rank(lines, "aa", 0, 0) == (1, 0)  # "aa" is nowhere: no total
    assert rank(["aaa"], "aa", 0, 1) == (2, 2)  # overlapping matches count, as find finds them


def test_find_goes_round_both_ways() -> None:
    lines = ["alpha beta", "gamma", "beta beta", "delta"]
    assert find(lines, "BETA", 1, 0) == (2, 0, False)
    assert find(lines, "beta", 2, 1) == (2, 5, False)
    assert find(lines, "beta", 3, 0) == (0, 6, True)  # past the end: from the top
    assert find(lines, "beta", 2, 0, forward=False) == (0, 6, False)
    assert find(lines, "beta", 0, 6, forward=False) == (2, 5, True)  # from the bottom
    assert find(["one beta"], "beta", 0, 5) == (0, 4, True)  # only itself, round the log
    assert find(lines, "omega", 0, 0) is None
    assert find([], "beta", 0, 0) is None
