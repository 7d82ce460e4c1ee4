"""Review by line in the TUI (enter, move, space), and the merge preview's understanding debt."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual.widgets import Static

from conftest import git
from looptui.engine import RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.tui.screens.help import HelpScreen
from looptui.tui.screens.merge import MergeScreen
from looptui.tui.screens.review import ReviewScreen
from looptui.tui.widgets.diff_view import DiffView
from test_review_lines import FIXED, debug_repo
from tui_support import open_app, plain, two_hunk_repository, until, wait_for_runs


async def test_line_mode_leaves_a_debugging_line_out_of_the_merge(tmp_path: Path) -> None:
    repo = debug_repo(tmp_path)
    async with open_app(repo, load_config(repo / CONFIG_NAME), tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix")
        await wait_for_runs(app, pilot, [run.id])
        app.review_run(run.id)
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        view = screen.query_one(DiffView)
        (hunk,) = screen.patch.files[0].hunks
        await pilot.press("space")  # outside line mode space decides nothing
        assert screen.selection.counts().undecided == 1
        assert screen.active_bindings["a"].binding.description == "Accept"
        await pilot.press("enter")
        assert screen.line_mode and view.line_cursor == hunk.changed[0]
        # there `a`/`x` take or leave the line, and the footer and `?` say so
        said = {key: active.binding.description for key, active in screen.active_bindings.items()}
        assert (said["a"], said["x"]) == ("Take line", "Leave line")
        listed = HelpScreen(screen).keys()
        assert ("a", "Take this line") in listed
        assert "Accept this hunk" not in dict(listed).values()
        assert ("⏎", "Back to deciding hunks") in listed  # not "Decide this hunk line by line"
        while "debug" not in hunk.lines[view.line_cursor].text:
            await pilot.press("j")
        await pilot.press("space")
        assert screen.selection.rejected_lines(hunk.key) == {view.line_cursor}
        shown = plain(view.units[hunk.key].content)
        assert "1 line left out" in shown and "✘" in shown
        assert "line mode" in str(screen.query_one("#review-title", Static).content)
        await pilot.press("escape")  # leaves line mode, not the screen
        assert not screen.line_mode and app.screen is screen
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen)
        assert "every hunk was decided or under the review cursor" in plain(
            dialog.query_one("#merge-debt").content
        )
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run.id].status is RunStatus.MERGED)
        merged = await app.engine.history.run(run.id)
        assert merged.review is not None and merged.review.decided_hunks == 1
    assert git(repo, "show", "main:shapes/area.py") == FIXED


async def test_merge_preview_counts_what_lands_unread_and_the_setting_refuses(
    tmp_path: Path,
) -> None:
    repo, config = two_hunk_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        app.review_run(run.id)
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
        await pilot.press("m")  # the cursor reached the first hunk only
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        debt = plain(app.screen.query_one("#merge-debt").content)
        assert "1 hunk (1 line) would land undecided, never under the review cursor" in debt
        assert not app.screen.query("#merge-refusal")
        await pilot.press("n")
        app.engine.config = dataclasses.replace(app.engine.config, require_decisions=True)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        refusal = plain(app.screen.query_one("#merge-refusal").content)
        assert "2 hunks are undecided and review.require_decisions is set" in refusal
        assert refusal.startswith("✘ cannot merge yet: ")  # nothing was tried yet
        offered = {key.binding.action for key in app.active_bindings.values() if key.enabled}
        assert "merge" not in offered and "back" in offered  # the footer offers no `y`
        await pilot.press("y")  # refused up front: nothing merges
        await pilot.pause()
        assert isinstance(app.screen, MergeScreen)
        await pilot.press("n", "j", "m")  # every hunk under the cursor now, none decided
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        assert app.screen.query("#merge-refusal")
        assert not app.screen.query("#merge-debt")  # no "✔ every hunk…" beside the refusal
        assert (await app.engine.history.run(run.id)).status is not RunStatus.MERGED
