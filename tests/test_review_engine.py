"""The engine's review facade without any UI: diff scopes, preview, partial merge, feedback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import cli_env, git
from looptui.demo import create_demo_repository
from looptui.engine import Config, Engine, LooptuiError, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.models import NoteKind
from looptui.engine.prompting import build_prompt
from looptui.engine.workspace import HunkKey, Patch, Selection


def instant(path: Path) -> Config:
    config = load_config(path / CONFIG_NAME)
    agents = {name: dataclasses.replace(a, speed=0) for name, a in config.agents.items()}
    return dataclasses.replace(config, agents=agents)


async def finished(engine: Engine, loop: str) -> str:
    run = await engine.start_run(loop)
    final = await engine.wait(run.id)
    assert not final.status.is_active
    return run.id


def debug_line(patch: Patch) -> tuple[HunkKey, int]:
    """fix-add's one hunk, and the index of the debugging line the agent put inside it."""
    (hunk,) = patch.files[0].hunks
    return hunk.key, next(i for i, line in enumerate(hunk.lines) if "print('debug" in line.text)


async def test_merge_leaves_out_a_rejected_line_inside_the_fix(tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path / "demo")
    engine = await Engine.open(repo, cli_env(), instant(repo))
    try:
        run_id = await finished(engine, "fix-add")
        patch = await engine.patch(run_id)
        selection = Selection(patch)
        fix, debug = debug_line(patch)  # the fix and the debug print share a hunk
        selection.toggle_line(fix, debug)
        assert selection.accepted() == (fix,) and selection.rejected_lines(fix) == {debug}
        reject = selection.rejected_patch()
        assert reject is not None
        plan = await engine.preview(run_id, reject)
        assert plan.preview.clean and plan.preview.changed_files == ("calc/arith.py",)
        assert plan.gate.allowed and plan.nothing is None
        assert git(repo, "log", "--oneline").count("\n") == 1  # the preview changed nothing
        assert (await engine.history.run(run_id)).diff.added == 2  # the fix and the debug line
        await engine.merge(run_id, squash=True, reject=reject)
        merged = await engine.history.run(run_id)
        assert merged.status is RunStatus.MERGED
        assert (merged.diff.files, merged.diff.added, merged.diff.removed) == (1, 1, 1)  # landed
    finally:
        await engine.close()
    arith = (repo / "calc/arith.py").read_text()
    assert "return a + b" in arith and "debug" not in arith
    assert git(repo, "status", "--porcelain") == ""


async def test_decisions_carry_between_scopes_by_content(tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path / "demo")
    engine = await Engine.open(repo, cli_env(), instant(repo))
    try:
        one_iteration = await finished(engine, "fix-add")
        two_iterations = await finished(engine, "fix-mean")
        whole, last = await engine.patch(one_iteration), await engine.patch(one_iteration, "last")
        mean_whole = await engine.patch(two_iterations)
        mean_last = await engine.patch(two_iterations, "last")
    finally:
        await engine.close()
    # one iteration: the same hunk in both scopes, and the line rejected inside it goes with it
    selection = Selection(whole)
    fix, debug = debug_line(whole)
    selection.toggle_line(fix, debug)
    assert selection.stranded(last) == ()
    there = Selection(last, selection.by_content(), selection.lines_by_content())
    (last_fix,) = last.keys
    assert there.accepted() == (last_fix,) and there.rejected_lines(last_fix) == {debug}
    back = Selection(whole, there.by_content(), there.lines_by_content())
    assert back.accepted() == (fix,) and back.rejected_lines(fix) == {debug}
    # two iterations: the last one's hunk is part of a larger hunk of the whole run
    [raise_hunk] = mean_last.keys
    selection = Selection(mean_last)
    selection.reject(raise_hunk)
    assert selection.stranded(mean_whole) == (raise_hunk,)
    assert Selection(mean_whole, selection.by_content()).rejected() == ()


async def test_last_iteration_scope_shows_only_its_change(tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path / "demo")
    engine = await Engine.open(repo, cli_env(), instant(repo))
    try:
        run_id = await finished(engine, "fix-mean")
        whole = await engine.patch(run_id)
        last = await engine.patch(run_id, "last")
        assert "(len(values) + 1)" in "".join(line for f in whole for line in f.render())
        text = "".join(line for f in last for line in f.render())
        assert "raise ValueError" in text and "(len(values) + 1)" not in text
    finally:
        await engine.close()


async def test_feedback_continues_the_run_and_leads_the_prompt(tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path / "demo")
    engine = await Engine.open(repo, cli_env(), instant(repo))
    try:
        run_id = await finished(engine, "fix-add")
        before = await engine.store.run(run_id)
        with pytest.raises(LooptuiError, match="empty"):
            await engine.feedback(run_id, "  ")
        run = await engine.feedback(run_id, "Remove the debug print in add().")
        assert run.status is RunStatus.QUEUED and run.max_iterations == 1 + 3
        final = await engine.wait(run_id)
        assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
        assert final.branch == before.branch and final.worktree == before.worktree
        notes = await engine.store.notes(run_id)
        assert [n.kind for n in notes][:2] == [NoteKind.PROGRESS, NoteKind.FEEDBACK]
        assert "debug" not in (Path(final.worktree) / "calc/arith.py").read_text()
        # the iteration before it met the goal: its prompt says so, the comment first
        second = (await engine.history.iterations(run_id))[1].prompt
        assert second.startswith("## Feedback from the human")
        assert "The last iteration met the goal; the human reviewed its work" in second
        assert "did not reach the goal" not in second
    finally:
        await engine.close()
    prompt = build_prompt("Goal.", 2, notes[:2], [], None)  # as the second iteration saw them
    assert "## Feedback from the human reviewing your work" in prompt
    assert prompt.index("Remove the debug print") > prompt.index("## Feedback")


async def test_feedback_is_refused_while_the_run_goes(tmp_path: Path) -> None:
    repo = create_demo_repository(tmp_path / "demo")
    config = load_config(repo / CONFIG_NAME)  # the replays at their real, human pace
    engine = await Engine.open(repo, cli_env(), config)
    try:
        run = await engine.start_run("fix-add")
        with pytest.raises(LooptuiError, match="stop it before"):
            await engine.feedback(run.id, "Faster, please.")
        await engine.stop(run.id)
    finally:
        await engine.close()


async def test_last_iteration_scope_of_an_iteration_that_changed_nothing_is_empty(
    tmp_path: Path,
) -> None:
    repo = create_demo_repository(tmp_path / "demo")
    engine = await Engine.open(repo, cli_env(), instant(repo))
    try:
        run_id = await finished(engine, "docs")
        await engine.feedback(run_id, "Check it once more.")  # writes the same file again
        final = await engine.wait(run_id)
        assert final.iterations == 2
        assert [i.commit is None for i in await engine.store.iterations(run_id)] == [False, True]
        assert len(await engine.patch(run_id, "last")) == 0
        assert [f.path for f in await engine.patch(run_id)] == ["docs/usage.md"]
    finally:
        await engine.close()
