"""The review screen and `looptui review` agree: the screen opens on the decisions kept for
the run, and keeps its own, for `looptui review RUN`, `looptui merge RUN` and the screen
opened again. With the engine in the app's process and with the app a client of the service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from conftest import cli_env, git, run_cli
from looptui.client.connect import open_supervisor
from looptui.engine import RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.workspace import Decision, KeptDecision
from looptui.tui.app import LooptuiApp
from looptui.tui.decision_keeper import merged
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.merge import MergeScreen
from looptui.tui.screens.review import ReviewScreen
from looptui.tui.settings import Settings
from looptui.tui.themes import SHIPPED_THEMES
from looptui.tui.widgets.diff_view import DiffView
from looptui.words import counted
from test_review_kept import AGENT, IGNORED, MODES, finished_run, hunks, kept_repo
from test_review_lines import FIXED
from tui_support import plain, until


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "service":
        request.getfixturevalue("service")  # the commands too go through the service
    return str(request.param)


@asynccontextmanager
async def open_app(
    mode: str, repo: Path, tmp_path: Path
) -> AsyncIterator[tuple[LooptuiApp, Pilot[None]]]:
    """The app on `repo`, its engine in this process or the service's client."""
    environ = {**cli_env(), "HOME": str(tmp_path / "home")}
    config = load_config(repo / CONFIG_NAME)
    supervisor = await open_supervisor(
        repo, environ, config, service=mode == "service", client="tui"
    )
    try:
        app = LooptuiApp(
            supervisor,
            Settings.load(tmp_path / "settings.toml"),
            theme_dirs=(SHIPPED_THEMES,),
            bell=False,
        )
        async with app.run_test(size=(160, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, GridScreen))
            yield app, pilot
    finally:
        await supervisor.close()


async def review(app: LooptuiApp, pilot: Pilot[None], run_id: str) -> ReviewScreen:
    app.review_run(run_id)
    await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
    screen = app.screen
    assert isinstance(screen, ReviewScreen)
    return screen


def shows(screen: ReviewScreen, rejected: int, lines: int) -> bool:
    """The title counts the rejected hunks and the lines left out of accepted ones, and the
    units say which."""
    ignore, area, debug = hunks(screen.patch)
    selection = screen.selection
    title = str(screen.query_one("#review-title", Static).render())  # as drawn, unstyled
    units = screen.query_one(DiffView).units
    return (
        selection.decision(ignore.key) is Decision.REJECTED
        and selection.decision(area.key) is Decision.ACCEPTED
        and selection.rejected_lines(area.key) == {debug}
        and f"accepted ({counted(lines, 'line')} left out)  {rejected} rejected" in title
        and "1 line left out" in plain(units[area.key].content)
    )


async def test_a_review_opens_on_the_decisions_looptui_review_kept(
    mode: str, tmp_path: Path
) -> None:
    repo = kept_repo(tmp_path)
    run_id = finished_run(repo)
    shown = run_cli(repo, "review", run_id, "--show")
    debug = next(line.split()[0] for line in shown.stdout.splitlines() if "print('debug'" in line)
    decided = run_cli(
        repo, "review", run_id, "--reject", ".gitignore:1", "--reject", f"shapes/area.py:1:{debug}"
    )
    assert decided.code == 0, decided.stderr
    async with open_app(mode, repo, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        assert shows(screen, rejected=1, lines=1)
        await pilot.press("t")  # the last iteration (the only one): the same decisions
        await until(pilot, lambda: screen.scope == "last")
        assert shows(screen, rejected=1, lines=1)
        await pilot.press("t")
        await until(pilot, lambda: screen.scope == "run")
        assert shows(screen, rejected=1, lines=1)
    # opening review and moving around decided nothing new: what is kept is unchanged
    assert "but lines" in run_cli(repo, "review", run_id).stdout


async def test_decisions_taken_in_the_app_are_what_looptui_review_and_merge_see(
    mode: str, tmp_path: Path
) -> None:
    repo = kept_repo(tmp_path)
    run_id = finished_run(repo)
    async with open_app(mode, repo, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        ignore, area, debug = hunks(screen.patch)
        assert screen.cursor == ignore.key  # .gitignore comes first
        await pilot.press("x")  # rejected, and on to the next hunk
        await until(pilot, lambda: screen.cursor == area.key)
        await pilot.press("enter")
        view = screen.query_one(DiffView)
        while view.line_cursor != debug:
            await pilot.press("j")
        await pilot.press("space")
        await pilot.press("escape", "escape")  # line mode, then the screen
        await until(pilot, lambda: isinstance(app.screen, GridScreen))

        async def kept() -> int:
            return len(await app.engine.review_decisions(run_id))

        # written in the background, by the app's worker: until it is done
        await until(
            pilot,
            lambda: (
                not any(w.group.startswith("review-keep") and w.is_running for w in app.workers)
            ),
        )
        assert await kept() == 2
        again = await review(app, pilot, run_id)  # opened again: as it was left
        assert shows(again, rejected=1, lines=1)

    printed = run_cli(repo, "review", run_id)
    assert printed.code == 0, printed.stderr
    lines = printed.stdout.splitlines()
    gitignore = lines.index(next(line for line in lines if line.startswith(".gitignore")))
    assert lines[gitignore + 1].startswith("  ✘ 1: @@") and "rejected" in lines[gitignore + 1]
    assert f"but lines {debug + 1} rejected" in printed.stdout
    merged = run_cli(repo, "merge", run_id)
    assert merged.code == 0, merged.stderr
    assert git(repo, "show", "main:shapes/area.py") == FIXED
    assert git(repo, "show", "main:.gitignore") == IGNORED


# what the agent leaves in shapes/area.py, debugging line and all
AREA = (
    "def rectangle(width, height):\n    print('debug', width, height)\n    return width * height\n"
)
CHANGED = "review decisions changed"


def keeping(app: LooptuiApp) -> bool:
    """A write of the review decisions is waiting or under way (`DecisionKeeper`)."""
    return any(w.group.startswith("review-keep") and not w.is_finished for w in app.workers)


def said(app: LooptuiApp, title: str) -> int:
    """How many times the app said something under `title`."""
    return sum(title == (notification.title or "") for notification in app._notifications)


async def test_a_rejection_kept_by_looptui_review_while_the_screen_is_open_holds_in_its_merge(
    mode: str, tmp_path: Path
) -> None:
    assert "print('debug'" in AGENT
    repo = kept_repo(tmp_path)
    run_id = finished_run(repo)
    async with open_app(mode, repo, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        ignore, _area, _debug = hunks(screen.patch)
        assert screen.selection.counts().undecided == 2
        # in another shell, while the screen is open on the run
        decided = run_cli(repo, "review", run_id, "--reject", ".gitignore")
        assert decided.code == 0, decided.stderr
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen)
        assert (dialog.counts.rejected, dialog.counts.undecided) == (1, 1)
        assert ".gitignore" not in dialog.preview.changed_files
        assert said(app, CHANGED) == 1
        assert screen.selection.decision(ignore.key) is Decision.REJECTED
        assert screen.query_one(DiffView).units[ignore.key].has_class("-rejected")
        assert "1 rejected" in str(screen.query_one("#review-title", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, ReviewScreen | MergeScreen))
        assert said(app, CHANGED) == 1  # once: the screen back on top found nothing new
    assert git(repo, "show", "main:.gitignore") == IGNORED
    assert git(repo, "show", "main:shapes/area.py") == AREA


async def test_decisions_taken_in_the_screen_are_not_taken_for_someone_elses(
    mode: str, tmp_path: Path
) -> None:
    repo = kept_repo(tmp_path)
    run_id = finished_run(repo)
    async with open_app(mode, repo, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        _ignore, area, debug = hunks(screen.patch)
        await pilot.press("x")  # .gitignore rejected; `m` at once: its write may be on its way
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen)
        assert (dialog.counts.rejected, dialog.counts.undecided) == (1, 1)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        # then `looptui review` leaves the debugging line out: taken in, once
        shown = run_cli(repo, "review", run_id, "--show")
        line = next(row.split()[0] for row in shown.stdout.splitlines() if "print('debug'" in row)
        decided = run_cli(repo, "review", run_id, "--reject", f"shapes/area.py:1:{line}")
        assert decided.code == 0, decided.stderr
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        assert said(app, CHANGED) == 1
        assert screen.selection.rejected_lines(area.key) == {debug}
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert screen.cursor == area.key
        await pilot.press("a")  # the screen takes area.py whole: kept, and merged, as usual
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen)
        assert (dialog.counts.accepted, dialog.counts.rejected) == (1, 1)
        assert said(app, CHANGED) == 1
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, ReviewScreen | MergeScreen))
        assert said(app, CHANGED) == 1
    assert git(repo, "show", "main:.gitignore") == IGNORED
    assert git(repo, "show", "main:shapes/area.py") == AREA
    printed = run_cli(repo, "review", run_id)  # the store holds the screen's last decisions
    assert printed.code == 0, printed.stderr
    assert "but lines" not in printed.stdout


def test_a_unit_the_screen_did_not_change_keeps_the_decision_kept_by_someone_else() -> None:
    known = [KeptDecision("a", Decision.ACCEPTED), KeptDecision("b", Decision.ACCEPTED)]
    ours = [  # accepted c, undid a, showed d; left b as it knew it
        KeptDecision("b", Decision.ACCEPTED),
        KeptDecision("c", Decision.ACCEPTED, shown=True),
        KeptDecision("d", Decision.UNDECIDED, shown=True),
    ]
    theirs = [  # rejected b and c, a line of e; kept a as it was
        KeptDecision("a", Decision.ACCEPTED),
        KeptDecision("b", Decision.REJECTED),
        KeptDecision("c", Decision.REJECTED),
        KeptDecision("e", Decision.ACCEPTED, (2,)),
    ]
    assert merged(known, ours, theirs) == [
        KeptDecision("b", Decision.REJECTED),  # theirs: the screen did not change it
        KeptDecision("c", Decision.ACCEPTED, shown=True),  # ours: the screen decided it
        KeptDecision("d", Decision.UNDECIDED, shown=True),  # shown stays shown
        KeptDecision("e", Decision.ACCEPTED, (2,)),
    ]  # and a, undone here, stays undone


async def test_a_decision_taken_in_the_screen_keeps_one_kept_meanwhile_by_looptui_review(
    mode: str,
    tmp_path: Path,
) -> None:
    repo = kept_repo(tmp_path)
    run_id = finished_run(repo)
    before = git(repo, "show", "main:shapes/area.py")
    async with open_app(mode, repo, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        ignore, _area, _debug = hunks(screen.patch)
        assert screen.cursor == ignore.key
        decided = run_cli(repo, "review", run_id, "--reject", "shapes/area.py")
        assert decided.code == 0, decided.stderr
        await pilot.press("a")  # .gitignore taken here: a write of the screen's own
        await until(pilot, lambda: not keeping(app))
        kept = {entry.decision for entry in await app.engine.review_decisions(run_id)}
        assert {Decision.ACCEPTED, Decision.REJECTED} <= kept  # theirs was not written over
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen)
        assert (dialog.counts.accepted, dialog.counts.rejected) == (1, 1)
        assert said(app, CHANGED) == 1
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, ReviewScreen | MergeScreen))
    assert git(repo, "show", "main:shapes/area.py") == before  # rejected by the CLI
    assert git(repo, "show", "main:.gitignore") != IGNORED  # accepted in the screen


async def test_a_merge_confirmed_after_looptui_review_changed_the_decisions_is_not_made(
    mode: str,
    tmp_path: Path,
) -> None:
    repo = kept_repo(tmp_path)
    run_id = finished_run(repo)
    async with open_app(mode, repo, tmp_path) as (app, pilot):
        screen = await review(app, pilot, run_id)
        ignore, _area, _debug = hunks(screen.patch)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        decided = run_cli(repo, "review", run_id, "--reject", ".gitignore")  # meanwhile
        assert decided.code == 0, decided.stderr
        await pilot.press("y")
        await until(pilot, lambda: said(app, "not merged") == 1)
        assert app.screen is screen
        assert screen.selection.decision(ignore.key) is Decision.REJECTED  # shown as kept
        assert app.board.summaries[run_id].status is RunStatus.SUCCEEDED
        await pilot.press("m")  # the preview again, and now it lands what it says
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run_id].status is RunStatus.MERGED)
    assert git(repo, "show", "main:.gitignore") == IGNORED
