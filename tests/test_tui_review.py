"""Review and merge by keyboard: the needs-you queue, hunk decisions, feedback, merge, discard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual.widgets import OptionList, Static

from conftest import git
from looptui.engine import Run, RunStatus
from looptui.engine.config import CheckConfig
from looptui.tui.screens.comment import CommentScreen
from looptui.tui.screens.confirm import ConfirmScreen
from looptui.tui.screens.merge import MergeScreen
from looptui.tui.screens.needs_you import NeedsYouScreen
from looptui.tui.screens.review import ReviewScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.diff_view import DiffView
from tui_support import (
    demo_repository,
    open_app,
    plain,
    two_hunk_repository,
    until,
    wait_for_runs,
)

ARITH_FIXED = (
    '"""Arithmetic on two numbers."""\n\n\n'
    "def add(a, b):\n    return a + b\n\n\n"
    "def subtract(a, b):\n    return a - b\n\n\n"
    "def multiply(a, b):\n    return a * b\n\n\n"
    "def divide(a, b):\n    return a / b\n"
)


async def review_finished_run(app, pilot, loop: str) -> tuple[Run, ReviewScreen]:  # type: ignore[no-untyped-def]
    """Run `loop` to its end, then open its review and wait until its diff is shown."""
    run = await app.engine.start_run(loop)
    await wait_for_runs(app, pilot, [run.id])
    app.review_run(run.id)
    await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
    return run, app.screen


async def review_from_queue(app, pilot, loop: str) -> ReviewScreen:  # type: ignore[no-untyped-def]
    """Press r, pick the run of `loop` in the queue, press enter."""
    await pilot.press("r")
    await pilot.pause()
    assert isinstance(app.screen, NeedsYouScreen)
    options = app.screen.query_one(OptionList)
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    target = next(i for i, run_id in enumerate(ids) if app.board.summaries[run_id].run.loop == loop)
    for _ in range(target):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause(0.5)
    assert isinstance(app.screen, ReviewScreen)
    return app.screen


async def to_the_debug_line(pilot, screen: ReviewScreen) -> int:  # type: ignore[no-untyped-def]
    """In line mode, move the cursor down onto the hunk's debugging line; its index."""
    view = screen.query_one(DiffView)
    hunk = screen.selection.line_hunk(view.cursor)
    assert screen.line_mode and hunk is not None
    for _ in hunk.changed:
        if "print('debug" in hunk.lines[view.line_cursor].text:
            return view.line_cursor
        await pilot.press("j")
    raise AssertionError("line mode never reached the debugging line")


async def test_reject_the_debug_line_inside_the_fix_and_merge_the_rest(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        runs = [await app.engine.start_run(loop) for loop in ("fix-add", "docs", "speedup")]
        await wait_for_runs(app, pilot, [run.id for run in runs])
        fix_add = runs[0]
        screen = await review_from_queue(app, pilot, "fix-add")
        view = screen.query_one(DiffView)
        (hunk,) = screen.patch.files[0].hunks  # the fix and the debug print share a hunk
        assert view.cursor == hunk.key
        assert "print('debug" in plain(view.units[hunk.key].content)
        await pilot.press("enter")  # line mode
        debug = await to_the_debug_line(pilot, screen)
        await pilot.press("space")
        counts = screen.selection.counts()
        assert (counts.accepted, counts.rejected, counts.undecided) == (1, 0, 0)
        assert screen.selection.rejected_lines(hunk.key) == {debug}
        assert "1 line left out" in plain(view.units[hunk.key].content)
        await pilot.press("escape")
        await pilot.press("m")
        await pilot.pause(0.5)
        assert isinstance(app.screen, MergeScreen)
        assert app.screen.preview.clean
        assert "calc/arith.py" in app.screen.preview.changed_files
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[fix_add.id].status is RunStatus.MERGED)
        await until(pilot, lambda: not isinstance(app.screen, ReviewScreen | MergeScreen))
    assert (repo / "calc/arith.py").read_text() == ARITH_FIXED
    assert git(repo, "status", "--porcelain") == ""
    assert not Path(fix_add.worktree).exists()
    assert fix_add.branch not in git(repo, "branch", "--list")
    # the base branch holds exactly the accepted change
    assert git(repo, "diff", "--stat", "HEAD~1", "HEAD").strip().startswith("calc/arith.py")
    # reopening shows the same runs, with their history
    async with open_app(repo, config, tmp_path) as (app, pilot):
        assert {s.id: s.status for s in app.board.summaries.values()} == {
            runs[0].id: RunStatus.MERGED,
            runs[1].id: RunStatus.SUCCEEDED,
            runs[2].id: RunStatus.STALLED,
        }


async def test_files_move_and_decide_whole_and_squash(tmp_path: Path) -> None:
    repo, config = two_hunk_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run, screen = await review_finished_run(app, pilot, "fix-add")
        await pilot.press("A")  # the whole file
        assert screen.selection.counts().accepted == 2
        await pilot.press("backspace")
        assert screen.selection.counts().accepted == 1
        await pilot.press("k", "j", "J", "K")
        await pilot.press("M")
        await pilot.pause(0.5)
        assert isinstance(app.screen, MergeScreen) and app.screen.squash
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run.id].status is RunStatus.MERGED)
    assert "print('debug" in (repo / "calc/arith.py").read_text()  # undecided lands
    assert len(git(repo, "rev-list", "--parents", "-n1", "HEAD").split()) == 2  # squash


async def test_a_conflict_is_previewed_and_nothing_merges(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        _run, _screen = await review_finished_run(app, pilot, "fix-add")
        (repo / "calc/arith.py").write_text("def add(a, b):\n    return b + a\n")
        git(repo, "commit", "-qam", "a different fix on main")
        head = git(repo, "rev-parse", "HEAD")
        await pilot.press("m")
        await pilot.pause(0.5)
        assert isinstance(app.screen, MergeScreen)
        assert not app.screen.preview.clean
        assert app.screen.has_class("-conflict")
        await pilot.press("y")  # refused: nothing to confirm
        assert isinstance(app.screen, MergeScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


async def test_a_comment_on_a_hunk_starts_a_new_iteration(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run, _screen = await review_finished_run(app, pilot, "fix-add")
        await pilot.press("c")  # on the one hunk: the fix, the debug print inside it
        await pilot.pause()
        assert isinstance(app.screen, CommentScreen)
        await pilot.press(*"Remove the debug print.")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.board.summaries[run.id].run.iterations == 2)
        final = await app.engine.wait(run.id)
        assert final.iterations == 2 and final.status is RunStatus.SUCCEEDED
        notes = await app.engine.store.notes(run.id)
        feedback = [note for note in notes if note.kind.value == "feedback"]
        assert len(feedback) == 1
        assert "On calc/arith.py, @@ -2,7 +2,8 @@:" in feedback[0].text  # add()'s hunk
        assert feedback[0].text.endswith("Remove the debug print.")
        assert final.max_iterations == 1 + 3  # the loop's budget again, from where it was
        worktree_file = Path(run.worktree) / "calc/arith.py"
        assert "print('debug" not in worktree_file.read_text()  # the agent acted on it


async def test_discard_asks_first(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("speedup")
        await wait_for_runs(app, pilot, [run.id])
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunScreen)
        await pilot.press("v")
        await pilot.pause(0.5)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert (await app.engine.store.run(run.id)).status is RunStatus.STALLED
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run.id].status is RunStatus.DISCARDED)
    assert not Path(run.worktree).exists()


async def test_scope_switches_to_the_last_iteration(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        _run, screen = await review_finished_run(app, pilot, "fix-mean")
        whole = plain(next(iter(screen.query_one(DiffView).units.values())).content)
        assert "(len(values) + 1)" in whole  # against the base
        await pilot.press("t")
        await pilot.pause(0.5)
        assert screen.scope == "last"
        last = plain(next(iter(screen.query_one(DiffView).units.values())).content)
        assert "(len(values) + 1)" not in last and "raise ValueError" in last


async def test_arrow_keys_move_between_hunks_in_a_small_terminal(tmp_path: Path) -> None:
    repo, config = two_hunk_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(80, 24)) as (app, pilot):
        _run, screen = await review_finished_run(app, pilot, "fix-add")
        view = screen.query_one(DiffView)
        await pilot.press("down")
        assert view.cursor == screen.patch.keys[1]
        await pilot.press("up")
        assert view.cursor == screen.patch.keys[0]


async def test_a_rejection_survives_switching_scope_and_stays_out(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run, screen = await review_finished_run(app, pilot, "fix-add")
        await pilot.press("enter")
        debug = await to_the_debug_line(pilot, screen)
        await pilot.press("space")  # reject the debug line, keep the fix
        assert screen.selection.rejected_lines(screen.patch.keys[0]) == {debug}
        for scope in ("last", "run"):
            await pilot.press("t")
            await until(pilot, lambda scope=scope: screen.scope == scope)  # type: ignore[misc]
            (hunk,) = screen.patch.keys
            assert screen.selection.accepted() == (hunk,)
            assert screen.selection.rejected_lines(hunk) == {debug}
            assert "1 line left out" in plain(screen.query_one(DiffView).units[hunk].content)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run.id].status is RunStatus.MERGED)
    landed = git(repo, "show", "main:calc/arith.py")
    assert "return a + b" in landed and "print('debug" not in landed


async def test_a_rejection_that_cannot_carry_keeps_the_scope(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        _run, screen = await review_finished_run(app, pilot, "fix-mean")
        await pilot.press("t")
        await until(pilot, lambda: screen.scope == "last")
        await pilot.press("x")  # the raise, part of the whole run's one larger hunk
        await pilot.press("t")
        await until(
            pilot, lambda: any("scope not switched" in (n.title or "") for n in app._notifications)
        )
        assert screen.scope == "last" and len(screen.selection.rejected()) == 1
        await pilot.press("backspace")  # undone: nothing is lost by switching now
        await pilot.press("t")
        await until(pilot, lambda: screen.scope == "run")


async def test_a_run_not_proven_done_merges_only_after_asking_why(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    failing = CheckConfig("tests", "echo 'add() is still wrong'; exit 1", 60.0)
    loop = dataclasses.replace(config.loops["fix-add"], checks=(failing,), max_iterations=1)
    config = dataclasses.replace(config, loops={**config.loops, "fix-add": loop})
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run, screen = await review_finished_run(app, pilot, "fix-add")
        verdict = screen.query_one("#review-verdict", Static)
        assert verdict.display
        assert f"run {run.id} is failed (check tests failed with exit 1)" in plain(verdict.content)
        head = git(repo, "rev-parse", "main")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        dialog = app.screen
        assert isinstance(dialog, MergeScreen) and dialog.has_class("-unproven")
        assert not dialog.plan.gate.allowed
        await pilot.press("y")
        assert dialog.armed  # asked, naming why
        assert app.screen is dialog
        confirm = plain(dialog.query_one("#merge-confirm", Static).content)
        assert "Merge anyway, though" in confirm and f"run {run.id} is failed" in confirm
        assert git(repo, "rev-parse", "main") == head
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run.id].status is RunStatus.MERGED)
    assert git(repo, "rev-parse", "main") != head
