"""Memory with provenance, for real: checkpoint notes after every iteration, lessons
distilled when a run ends and held as proposals until the human accepts them, and what of it
later prompts carry (each agent records the prompt it received)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env, git, make_repo
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.memory.recall import MEMORY_CHARS, choose
from looptui.engine.models import Note, NoteKind, NoteStatus, Source

pytestmark = pytest.mark.timeout(120)
PY = sys.executable
SECRET = "sk-memorytest-0123456789abcdef"


def recorder(prompts: Path, fix_on: str = "") -> str:
    """An agent that writes down the prompt of each iteration (run/iteration), and fixes the
    file on iteration `fix_on` of any run ('' never)."""
    return (
        "import os, pathlib, sys\n"
        "run, n = os.environ['LOOPTUI_RUN_ID'], os.environ['LOOPTUI_ITERATION']\n"
        f"out = pathlib.Path({str(prompts)!r}) / run\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "(out / n).write_text(sys.stdin.read())\n"
        "pathlib.Path('notes.txt').write_text('touched ' + n)\n"
        f"if n == {fix_on!r}: pathlib.Path('done.txt').write_text('ok')\n"
        "print('I looked at notes.txt')\n"
    )


def config(prompts: Path, fix_on: str = "", **loop: Any) -> dict[str, Any]:
    agents: dict[str, Any] = {
        "agent": {"kind": "command", "command": [PY, "-c", recorder(prompts, fix_on)]}
    }
    agents.update(loop.pop("agents", {}))
    return {
        "agents": agents,
        "loops": {
            "job": {
                "prompt": "Create done.txt.",
                "agent": "agent",
                "checks": [
                    {
                        "name": "done",
                        "run": f"test -f done.txt || {{ echo 'FAIL: done.txt is missing "
                        f"{SECRET}'; exit 1; }}",
                    }
                ],
                "max_iterations": 2,
                **loop,
            },
            "other": {"prompt": "Something else.", "agent": "agent", "max_iterations": 1},
        },
    }


async def open_engine(tmp_path: Path, cfg: dict[str, Any]) -> Engine:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, cfg)
    environ = {**cli_env(), "LEAKY_TOKEN": SECRET}
    return await Engine.open(root, environ, load_config(root / CONFIG_NAME))


async def run_to_end(engine: Engine, loop: str = "job") -> Any:
    run = await engine.start_run(loop)
    return await engine.wait(run.id)


async def test_each_iteration_leaves_a_checkpoint_that_the_next_prompt_carries(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts"
    engine = await open_engine(tmp_path, config(prompts, fix_on="2"))
    try:
        final = await run_to_end(engine)
        assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
        first, second = [n for n in await engine.store.notes(final.id) if n.iteration][:2]
    finally:
        await engine.close()
    assert first.kind is NoteKind.ATTEMPT and first.loop == "job"
    assert first.status is NoteStatus.KEPT
    lines = first.text.splitlines()
    assert lines[0].startswith("agent finished; checks 0/1 passed; diff 1 file")
    assert lines[1].startswith("Progress: verdict: not done (checks)")
    assert lines[2] == "Tried: changed notes.txt; the agent said: I looked at notes.txt"
    assert lines[3].startswith("Problems: check done failed (exit 1): FAIL: done.txt is missing")
    assert SECRET not in first.text  # redacted like everything stored
    assert lines[4].startswith("Next steps: ")
    kinds = {source.kind for source in first.sources}
    assert {"iteration", "check", "verdict"} <= kinds
    assert all(source.run_id == final.id for source in first.sources)
    assert second.kind is NoteKind.PROGRESS and second.text.startswith("goal met:")
    prompt = (prompts / final.id / "2").read_text()
    assert "## Notes from earlier iterations" in prompt
    assert "  Problems: check done failed (exit 1): FAIL: done.txt is missing" in prompt


async def test_a_checkpoint_writer_agent_writes_the_note_and_a_failing_one_falls_back(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts"
    asked = tmp_path / "asked.txt"
    writer = (
        "import pathlib, sys\n"
        f"pathlib.Path({str(asked)!r}).write_text(sys.stdin.read())\n"
        "print('Progress: nothing yet\\nNext steps: create done.txt at the root')\n"
    )
    agents = {
        "writer": {"kind": "command", "command": [PY, "-c", writer]},
        "broken": {"kind": "command", "command": [PY, "-c", "import sys; sys.exit(3)"]},
    }
    engine = await open_engine(
        tmp_path, config(prompts, checkpoint_writer="writer", max_iterations=1, agents=agents)
    )
    try:
        final = await run_to_end(engine)
        (note,) = [n for n in await engine.store.notes(final.id) if n.kind is not NoteKind.LESSON]
    finally:
        await engine.close()
    assert note.text == "Progress: nothing yet\nNext steps: create done.txt at the root"
    assert note.sources[0].kind == "agent" and note.sources[0].detail == "writer"
    question = asked.read_text()
    assert "Create done.txt." in question  # the goal
    assert "checks 0/1 passed" in question  # and the evidence looptui recorded
    assert "# Writing the checkpoint note" in question  # the shipped skill's instructions

    engine = await open_engine(
        tmp_path / "second",
        config(prompts, checkpoint_writer="broken", max_iterations=1, agents=agents),
    )
    try:
        final = await run_to_end(engine)
        (note,) = [n for n in await engine.store.notes(final.id) if n.kind is not NoteKind.LESSON]
        errors = [e for e in await engine.store.events(final.id) if e.kind == "error"]
    finally:
        await engine.close()
    assert note.text.startswith("agent finished; checks 0/1 passed")  # looptui's own
    assert any("the checkpoint writer broken gave no note" in str(e.payload) for e in errors)


async def test_a_lesson_is_a_proposal_until_accepted_and_then_reaches_the_next_run(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts"
    engine = await open_engine(tmp_path, config(prompts))
    try:
        failed = await run_to_end(engine)
        assert failed.status is RunStatus.FAILED
        lessons = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
        (lesson,) = lessons
        assert lesson.status is NoteStatus.PROPOSED and lesson.run_id == failed.id
        assert lesson.text.startswith("Check done (`test -f done.txt || ")
        assert "kept failing for 2 iterations with: FAIL: done.txt is missing" in lesson.text
        assert SECRET not in lesson.text and SECRET not in str(lesson.sources)
        assert [s.kind for s in lesson.sources] == ["run", "check", "check"]

        second = await run_to_end(engine)  # a proposal reaches no prompt
        assert (
            "What earlier runs of this loop learned" not in (prompts / second.id / "1").read_text()
        )
        (again,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
        assert again.id == lesson.id and again.seen == 2  # the same lesson, counted again

        accepted = await engine.accept_note(lesson.id or 0)
        assert accepted.status is NoteStatus.ACCEPTED
        third = await run_to_end(engine)
        prompt = (prompts / third.id / "1").read_text()
        assert "## What earlier runs of this loop learned" in prompt
        assert f"(note #{lesson.id}, from run {failed.id}, seen in 2 runs) Check done" in prompt
        other = await run_to_end(engine, "other")  # memory is per loop
        assert "What earlier runs" not in (prompts / other.id / "1").read_text()
        assert (await engine.store.note(lesson.id or 0)).uses >= 2  # both iterations of run 3
    finally:
        await engine.close()


async def test_lessons_auto_are_kept_at_once_and_off_makes_none(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    engine = await open_engine(tmp_path, config(prompts, lessons="auto"))
    try:
        await run_to_end(engine)
        (lesson,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
        assert lesson.status is NoteStatus.ACCEPTED
        second = await run_to_end(engine)
        assert f"note #{lesson.id}" in (prompts / second.id / "1").read_text()
    finally:
        await engine.close()
    engine = await open_engine(tmp_path / "off", config(prompts, lessons="off"))
    try:
        await run_to_end(engine)
        assert await engine.store.memory(loop="job", kinds=[NoteKind.LESSON]) == []
    finally:
        await engine.close()


async def test_the_human_edits_and_deletes_and_search_follows(tmp_path: Path) -> None:
    engine = await open_engine(tmp_path, config(tmp_path / "prompts"))
    try:
        await run_to_end(engine)
        (lesson,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
        edited = await engine.edit_note(lesson.id or 0, "Create done.txt first, zebra.")
        assert edited.text == "Create done.txt first, zebra." and edited.edited_at
        assert edited.sources[-1].kind == "human"
        path = engine.repository.store_path
        with sqlite3.connect(path) as db:
            found = db.execute(
                "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'zebra'"
            ).fetchall()
            assert found == [(lesson.id,)]
            # the words of the text before the edit are no longer found
            assert not db.execute("SELECT 1 FROM notes_fts WHERE notes_fts MATCH 'kept'").fetchall()
        await engine.delete_note(lesson.id or 0)
        assert await engine.store.memory(loop="job", kinds=[NoteKind.LESSON]) == []
        with sqlite3.connect(path) as db:
            assert not db.execute(
                "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'zebra'"
            ).fetchall()
        with pytest.raises(Exception, match="no note #"):
            await engine.accept_note(lesson.id or 0)
    finally:
        await engine.close()


async def test_changes_rejected_at_merge_become_a_lesson(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    engine = await open_engine(tmp_path, config(prompts, fix_on="1"))
    try:
        run = await run_to_end(engine)
        assert run.status is RunStatus.SUCCEEDED
        root = engine.repository.root
        # the reviewer turns down notes.txt: its change, as the run's diff has it
        reject = git(root, "diff", run.base_commit, run.branch, "--", "notes.txt")
        await engine.merge(run.id, reject=reject)
        assert not (root / "notes.txt").exists() and (root / "done.txt").exists()
        (lesson,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
    finally:
        await engine.close()
    assert lesson.text == (
        "The reviewer rejected this change to notes.txt: touched 1. Leave such changes out."
    )
    assert lesson.status is NoteStatus.PROPOSED
    assert lesson.sources[0].kind == "rejected_hunk"


def test_recall_takes_the_most_useful_notes_within_its_bound() -> None:
    def note(i: int, text: str, **fields: Any) -> Note:
        fields.setdefault("status", NoteStatus.ACCEPTED)
        run = fields.pop("run_id", f"r{i}")
        return Note(run, 1, NoteKind.LESSON, text, 1000.0 + i, id=i, loop="job", **fields)

    notes = [note(i, f"lesson {i} " + "x" * 500) for i in range(40)]
    notes.append(note(100, "check pytest fails on import"))
    notes.append(note(101, "the human's rule", sources=(Source("human"),)))
    notes.append(note(102, "a proposal", status=NoteStatus.PROPOSED))
    notes.append(note(103, "this run's own", run_id="now"))
    from looptui.engine.models import CheckResult

    failing = [CheckResult("pytest", "pytest -q", 1, 0.1, "E")]
    chosen = choose(notes, "now", failing)
    assert [n.id for n in chosen[:2]] == [100, 101]  # about what fails now; the human's
    assert sum(len(n.text) + 40 for n in chosen) <= MEMORY_CHARS
    assert 102 not in [n.id for n in chosen]  # never a proposal
    assert 103 not in [n.id for n in chosen]  # the run's own notes come by another way
    assert len(chosen) < len(notes) - 2  # the bound holds


async def test_a_store_of_schema_ten_gives_its_notes_their_loop(tmp_path: Path) -> None:
    from looptui.engine.store import Store
    from test_ledger import undo_memory
    from test_store import a_run

    path = tmp_path / "old.db"
    store = await Store.open(path)
    await store.insert_run(a_run("r1"))
    await store.add_note(Note("r1", 1, NoteKind.ATTEMPT, "tried"))
    await store.close()
    with sqlite3.connect(path) as db:
        undo_memory(db)
        db.execute("PRAGMA user_version = 10")
    store = await Store.open(path)
    try:
        (note,) = await store.notes("r1")
        assert note.loop == (await store.run("r1")).loop and note.status is NoteStatus.KEPT
    finally:
        await store.close()


async def test_a_run_continued_after_feedback_is_not_told_its_own_proposed_lessons(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts"
    engine = await open_engine(tmp_path, config(prompts))
    try:
        failed = await run_to_end(engine)
        (lesson,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
        assert lesson.status is NoteStatus.PROPOSED and lesson.run_id == failed.id
        await engine.feedback(failed.id, "try creating the file at the root")
        await engine.wait(failed.id)
        prompt = (prompts / failed.id / "3").read_text()
        assert "try creating the file at the root" in prompt  # the feedback leads it
        assert "(lesson)" not in prompt and "kept failing" not in prompt
    finally:
        await engine.close()


async def test_what_an_agent_committed_itself_is_named_in_its_checkpoint_and_lesson(
    tmp_path: Path,
) -> None:
    committer = (
        "import os, pathlib, subprocess\n"
        "n = os.environ['LOOPTUI_ITERATION']\n"
        "pathlib.Path(f'step{n}.txt').write_text(n)\n"
        "if n == '2': pathlib.Path('done.txt').write_text('ok')\n"
        "subprocess.run(['git', 'add', '-A'], check=True)\n"
        "subprocess.run(['git', '-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-qm',"
        " 'mine'], check=True)\n"
    )
    agents = {"committer": {"kind": "command", "command": [PY, "-c", committer]}}
    engine = await open_engine(
        tmp_path, config(tmp_path / "prompts", agent="committer", agents=agents)
    )
    try:
        final = await run_to_end(engine)
        assert final.status is RunStatus.SUCCEEDED
        first, second = [n for n in await engine.store.notes(final.id) if n.iteration][:2]
        (lesson,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
    finally:
        await engine.close()
    assert "Tried: changed step1.txt" in first.text
    assert "Tried: changed done.txt, step2.txt" in second.text
    assert lesson.text.endswith("It passed after iteration 2 changed done.txt, step2.txt.")


async def test_a_checkpoint_writer_that_writes_in_the_worktree_is_undone(tmp_path: Path) -> None:
    vandal = (
        "import pathlib, subprocess\n"
        "pathlib.Path('README.md').write_text('vandalised')\n"
        "pathlib.Path('new.txt').write_text('new')\n"
        "print('Progress: all good')\n"
    )
    agents = {"vandal": {"kind": "command", "command": [PY, "-c", vandal]}}
    engine = await open_engine(
        tmp_path,
        config(tmp_path / "prompts", checkpoint_writer="vandal", max_iterations=1, agents=agents),
    )
    try:
        final = await run_to_end(engine)
        (note,) = [n for n in await engine.store.notes(final.id) if n.kind is not NoteKind.LESSON]
        errors = [str(e.payload) for e in await engine.store.events(final.id) if e.kind == "error"]
        worktree = Path(final.worktree)
        status = git(worktree, "status", "--porcelain")
        readme = (worktree / "README.md").read_text()
    finally:
        await engine.close()
    assert note.text.startswith("agent finished; checks 0/1 passed")  # looptui's own note
    assert any("changed the worktree; its changes were undone" in e for e in errors)
    assert status == "" and readme == "hi\n"


async def test_a_deleted_lesson_is_not_proposed_again(tmp_path: Path) -> None:
    engine = await open_engine(tmp_path, config(tmp_path / "prompts"))
    try:
        await run_to_end(engine)
        (lesson,) = await engine.store.memory(loop="job", kinds=[NoteKind.LESSON])
        await engine.delete_note(lesson.id or 0)
        await run_to_end(engine)  # the same failure again
        assert await engine.store.memory(loop="job", kinds=[NoteKind.LESSON]) == []
        hits = await engine.store.search("goal not met")  # why the run ended is found
        assert hits and all(hit.kind == "status" for hit in hits)
    finally:
        await engine.close()
