"""Logs that read well and words that read as English: wrapped and indented log lines, a
card's last line from the agent's final message, no doubled status words, counts in the
singular, working time apart from waiting time, and an honest prompt after feedback."""

from __future__ import annotations

from looptui.console import CLI_PALETTE, render_event
from looptui.engine.models import (
    DiffStat,
    Note,
    NoteKind,
    Run,
    RunStatus,
    Verdict,
    status_reason,
)
from looptui.engine.prompting import build_prompt
from looptui.protocol.events import (
    AgentFinished,
    AgentSaid,
    Committed,
    Event,
    IterationMarked,
    NoteAdded,
    StatusChanged,
    ToolCalled,
)
from looptui.tui import format
from looptui.tui.board import RunSummary
from looptui.tui.widgets.run_card import card_title
from looptui.tui.widgets.run_log import RunLog
from looptui.words import counted
from tui_support import LogApp, until


def line(payload: object, prefix: str = "") -> str:
    text = render_event(Event("r1", payload, 1, 0.0, 1), prefix, palette=CLI_PALETTE)  # type: ignore[arg-type]
    assert text is not None
    return text.plain


def a_run(**changes: object) -> Run:
    fields: dict[str, object] = {
        "id": "r1",
        "loop": "fix",
        "agent": "claude",
        "status": RunStatus.SUCCEEDED,
        "prompt": "",
        "base_branch": "main",
        "base_commit": "abc",
        "branch": "looptui/fix/r1",
        "worktree": "/tmp/wt",
        "max_iterations": 3,
        "iterations": 3,
        "started_at": 1000.0,
        "finished_at": 1100.0,
    }
    return Run(**{**fields, **changes})  # type: ignore[arg-type]


# -- words ---------------------------------------------------------------------------------


def test_counts_read_in_the_singular_and_the_plural() -> None:
    assert [counted(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert counted(1, "match", "matches") + counted(3, "match", "matches") == "1 match3 matches"
    assert str(DiffStat(1, 2, 1)) == "1 file +2 -1"
    assert format.diff_stat(DiffStat(2, 0, 5)) == "+0 −5 in 2 files"
    assert line(Committed("a" * 40, 1, 2, 1)).endswith("(+2 -1 in 1 file)")


def test_no_status_line_says_its_status_twice() -> None:
    assert line(StatusChanged(RunStatus.CANCELLED, "cancelled")) == "■ cancelled"
    quit_line = line(StatusChanged(RunStatus.CANCELLED, "cancelled: looptui quit at once"))
    assert quit_line == "■ cancelled: looptui quit at once"
    assert status_reason(RunStatus.FAILED, "check tests failed") == "check tests failed"
    assert status_reason(RunStatus.CANCELLED, "Cancelled") is None


def test_merged_and_discarded_runs_say_their_branch_and_worktree_are_gone() -> None:
    assert line(StatusChanged(RunStatus.MERGED)) == "■ merged: branch and worktree removed"
    assert line(StatusChanged(RunStatus.DISCARDED)).endswith("branch and worktree removed")
    assert line(StatusChanged(RunStatus.SUCCEEDED)) == "■ succeeded"


def test_multi_line_agent_text_and_notes_stay_under_their_first_line() -> None:
    said = line(AgentSaid("Fixed add().\nIt returned a - b.\n"), prefix="r1 ")
    assert said == "r1   ✎ Fixed add().\nr1     It returned a - b."
    note = line(NoteAdded(NoteKind.PROGRESS, "goal met\nProgress: done"))
    assert note == "  ✍ note (progress): goal met\n    Progress: done"


# -- the card ------------------------------------------------------------------------------


def test_a_card_shows_the_agents_final_message_not_its_last_tool() -> None:
    summary = RunSummary(a_run(status=RunStatus.RUNNING))
    summary.apply(Event("r1", ToolCalled("Bash", {"command": "pytest"}), 1, 0.0))
    assert summary.last_line == "▸ Bash"
    summary.apply(Event("r1", AgentFinished(True, "All done.\n\nThe tests pass."), 1, 0.0))
    assert summary.last_line == "The tests pass."
    summary.apply(Event("r1", AgentFinished(True, ""), 1, 0.0))  # said nothing: kept
    summary.apply(Event("r1", AgentFinished(False, "claude: error"), 1, 0.0))
    assert summary.last_line == "The tests pass."


def test_a_card_names_its_agent_only_when_the_agent_is_not_the_loop() -> None:
    assert card_title(RunSummary(a_run())) == "fix · claude"
    assert card_title(RunSummary(a_run(loop="fix-add", agent="fix-add"))) == "fix-add"


def test_working_time_leaves_out_the_wait_for_review() -> None:
    # 100 s from start to end, of which its iterations took 30: it waited 70
    summary = RunSummary(a_run(worked=30.0))
    assert summary.elapsed(5000.0) == 100.0
    assert (summary.working(5000.0), summary.waiting(5000.0)) == (30.0, 70.0)
    assert format.times(30.0, 70.0) == "working 0:30 · waited 1:10"
    assert format.times(30.0, 2.0) == "working 0:30"  # a gap between turns is no wait
    # going again after feedback: the iteration going counts up to now
    going = RunSummary(a_run(status=RunStatus.RUNNING, finished_at=None, worked=30.0))
    going.apply(Event("r1", IterationMarked("started", max=6), 4, 2000.0))
    assert going.working(2010.0) == 40.0 and going.waiting(2010.0) == 1010.0 - 40.0
    # stopped in its second iteration, 20 s in: those 20 s were work; a crash's are unknown
    ended = {"worked": 10.0, "working_since": 1080.0, "finished_at": 1100.0}
    stopped = RunSummary(a_run(status=RunStatus.CANCELLED, **ended))
    assert (stopped.working(5000.0), stopped.waiting(5000.0)) == (30.0, 70.0)
    crashed = RunSummary(a_run(status=RunStatus.INTERRUPTED, **ended))
    assert crashed.working(5000.0) == 10.0


def test_the_limit_feedback_added_is_said() -> None:
    run = a_run(max_iterations=5)
    assert format.iteration_short(3, run, 3) == "iteration 3/5 (+2)"  # the title's limit
    assert format.iteration_long(3, run, 3) == "iteration 3/5 (2 iterations added by feedback)"
    assert format.iteration_short(3, a_run(), 3) == "iteration 3/3"
    said = format.feedback_limit(a_run(), 3)
    assert said == (
        "Sending starts iteration 4 and raises the run's limit from 3 to 6 iterations (3 more)."
    )


# -- the prompt after feedback -------------------------------------------------------------


def test_after_a_successful_iteration_the_prompt_says_it_met_the_goal() -> None:
    notes = [
        Note("r1", 1, NoteKind.PROGRESS, "goal met"),
        Note("r1", 1, NoteKind.FEEDBACK, "Remove the debug print."),
    ]
    done = Verdict(done=True, evaluator="checks")
    prompt = build_prompt("Fix add().", 2, notes, [], done)
    assert prompt.startswith("## Feedback from the human")
    assert "The last iteration met the goal; the human reviewed its work" in prompt
    assert "did not reach the goal" not in prompt
    # the iteration after that one: the feedback still leads, and what is true is said
    later = [*notes, Note("r1", 2, NoteKind.ATTEMPT, "checks failed")]
    again = build_prompt("Fix add().", 3, later, [], Verdict(done=False, evaluator="checks"))
    assert again.startswith("## Feedback from the human") and "Remove the debug" in again
    assert "reviewed the work of iteration 1" in again
    assert "the iterations since have not yet reached the goal" in again
    # no feedback: the iterations before did not reach the goal, else there were no more
    plain = build_prompt("Fix add().", 2, notes[:1], [], None)
    assert "Earlier iterations did not reach the goal." in plain


# -- the log wraps -------------------------------------------------------------------------


async def test_the_log_wraps_long_lines_under_their_text_and_unwraps() -> None:
    app = LogApp()
    words = " ".join(f"word{n}" for n in range(40))
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.add([Event("r1", AgentSaid(words), 1, 0.0, 1)])
        log.flush()
        await pilot.pause()
        assert len(log.lines) == 1 and log.virtual_size.width > 60
        log.wrap = True
        await until(pilot, lambda: len(log.lines) > 1)
        rows = [strip.text for strip in log.lines]
        width = log.scrollable_content_region.width
        assert all(len(row.rstrip()) <= width for row in rows)
        assert rows[0].startswith("  ✎ word0 ")
        assert all(row.startswith("    word") for row in rows[1:])  # under the text
        assert " ".join(row.strip() for row in rows).replace("✎ ", "") == words
        await pilot.resize_terminal(40, 20)  # narrower: laid out again to the new width
        await until(pilot, lambda: len(log.lines) > len(rows))
        log.wrap = False
        await until(pilot, lambda: len(log.lines) == 1)
