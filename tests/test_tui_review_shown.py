"""What the review cursor reached holds across app restarts, as decisions do: the merge
preview and the merged run's tally count a hunk shown in an earlier session as shown, and
`looptui review` keeps what the app showed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from textual.widgets import Static

from conftest import cli_env, run_cli
from looptui.engine import Engine, RunStatus
from looptui.engine.config import Config
from looptui.engine.workspace import Decision, HunkKey
from looptui.engine.workspace.selection import content_ids, digest
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.merge import MergeScreen
from test_tui_review_kept import keeping, review
from tui_support import open_app, plain, two_hunk_repository, until, wait_for_runs


def written_at(app: LooptuiApp, run_id: str) -> float:
    """When the run's review decisions were last written to the store."""
    assert isinstance(app.engine, Engine)
    with sqlite3.connect(app.engine.store.path) as db:
        row = db.execute(
            "SELECT updated_at FROM review_decisions WHERE run_id = ?", (run_id,)
        ).fetchone()
    return float(row[0])


async def show_both_hunks(repo: Path, config: Config, tmp_path: Path) -> tuple[str, HunkKey]:
    """A finished two-hunk run whose review screen had the cursor on both hunks, deciding
    neither, in an app that then quit; the run's id and its second hunk."""
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        screen = await review(app, pilot, run.id)
        first, second = screen.patch.keys
        assert screen.cursor == first
        await pilot.press("j")
        await until(pilot, lambda: screen.cursor == second)
        await until(pilot, lambda: not keeping(app))
        written = written_at(app, run.id)
        await pilot.press("k", "j")  # nothing new reached: nothing new to write
        await until(pilot, lambda: screen.cursor == second and not keeping(app))
        assert written_at(app, run.id) == written
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, GridScreen))
        await until(pilot, lambda: not keeping(app))
        assert screen.selection.counts().undecided == 2  # nothing decided
    return run.id, second


async def test_hunks_shown_before_a_restart_do_not_land_as_unread(tmp_path: Path) -> None:
    repo, config = two_hunk_repository(tmp_path / "demo")
    run_id, _ = await show_both_hunks(repo, config, tmp_path)
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        await pilot.press("m")  # this session's cursor reached the first hunk only
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        debt = plain(app.screen.query_one("#merge-debt", Static).content)
        assert "every hunk was decided or under the review cursor" in debt
        assert "never under the review cursor" not in debt
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run_id].status is RunStatus.MERGED)
        merged = await app.engine.history.run(run_id)
        assert merged.review is not None
        assert (merged.review.decided_hunks, merged.review.shown_hunks) == (0, 2)
        assert merged.review.unread_hunks == 0
        assert screen.selection.counts().undecided == 2


async def test_looptui_review_keeps_what_the_app_showed(tmp_path: Path) -> None:
    repo, config = two_hunk_repository(tmp_path / "demo")
    run_id, _ = await show_both_hunks(repo, config, tmp_path)
    engine = await Engine.open(repo, {**cli_env(), "HOME": str(tmp_path / "home")}, config)
    try:
        patch = await engine.patch(run_id)
        file = patch.files_of(patch.keys[0])[0].path
        decided = run_cli(repo, "review", run_id, "--reject", f"{file}:1")
        assert decided.code == 0, decided.stderr
        # the report counts what the app showed: the undecided hunk is not unread
        assert "every hunk was decided or under the review cursor" in decided.stdout
        ids = content_ids(patch)
        kept = {entry.unit: entry for entry in await engine.review_decisions(run_id)}
        first, second = (kept[digest(ids[key])] for key in patch.keys)
        assert (first.decision, first.shown) == (Decision.REJECTED, True)
        assert (second.decision, second.shown) == (Decision.UNDECIDED, True)
        again = run_cli(repo, "review", run_id, "--reset")  # decisions go, what was shown stays
        assert again.code == 0, again.stderr
        kept_now = await engine.review_decisions(run_id)
        assert [(entry.decision, entry.shown) for entry in kept_now] == [
            (Decision.UNDECIDED, True),
            (Decision.UNDECIDED, True),
        ]
        merged = run_cli(repo, "merge", run_id)  # the kept decisions, and what was shown
        assert merged.code == 0, merged.stderr
        landed = await engine.history.run(run_id)
        assert landed.review is not None
        assert (landed.review.shown_hunks, landed.review.unread_hunks) == (2, 0)
    finally:
        await engine.close()
