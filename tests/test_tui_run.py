"""The agent screen: log (tool calls compact and expandable), diff, verdicts, memory."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.segment import Segment
from textual.widgets import Collapsible, TabbedContent

from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.diff_view import DiffUnit, DiffView
from looptui.tui.widgets.evidence import VerdictsView
from looptui.tui.widgets.memory_list import MemoryList
from looptui.tui.widgets.run_log import RunLog
from tui_support import demo_repository, open_app, plain, until, wait_for_runs


def log_text(log: RunLog) -> str:
    return "\n".join(strip.text for strip in log.lines)


async def open_run_of(app, pilot, loop: str) -> RunScreen:  # type: ignore[no-untyped-def]
    run = await app.engine.start_run(loop)
    await wait_for_runs(app, pilot, [run.id])
    await pilot.press("enter")
    await pilot.pause(0.3)
    assert isinstance(app.screen, RunScreen) and app.screen.run_id == run.id
    return app.screen


async def test_the_log_shows_the_run_and_expands_tool_calls(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "docs")
        log = screen.query_one(RunLog)
        text = log_text(log)
        assert "collecting the public functions" in text
        assert "▶ iteration 1/2" in text and "check usage-doc: passed" in text
        compact = [line for line in text.splitlines() if "⚙ search" in line]
        assert len(compact) == 1 and "pattern" in compact[0]
        await pilot.press("e")
        await pilot.pause()
        expanded = log_text(log)
        assert '"pattern": "def "' in expanded  # the input, whole and pretty
        await pilot.press("e")
        await pilot.pause()
        assert log_text(log) == text


async def test_the_log_follows_a_live_run(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "docs")
        log = screen.query_one(RunLog)
        before = log_text(log)
        run = await app.engine.feedback(screen.run_id, "Mention mean() of an empty list.")
        await app.engine.wait(run.id)
        await pilot.pause(0.5)
        after = log_text(log)
        assert after.startswith(before)
        assert "▶ iteration 2/3" in after[len(before) :]  # feedback grants the budget again
        assert "Mention mean() of an empty list." in after


async def test_diff_tab_unified_and_split(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "fix-add")
        await pilot.press("2")
        await pilot.pause(0.5)
        assert screen.query_one(TabbedContent).active == "diff"
        view = screen.query_one(DiffView)
        units = list(view.query(DiffUnit))
        assert len(units) == 1  # the fix, a stray debug line inside its hunk
        first = plain(units[0].content)
        assert "calc/arith.py" in first and "return a + b" in first and "return a - b" in first
        assert "print('debug: add', a, b)" in first
        await pilot.press("u")
        await pilot.pause()
        assert view.split
        assert "return a + b" in plain(units[0].content)


def drawn(content: object, width: int) -> list[list[Segment]]:
    console = Console(width=width, color_system="truecolor")
    return console.render_lines(content, console.options)  # type: ignore[arg-type]


async def test_diff_colours_come_from_the_theme_and_tints_reach_the_edge(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "fix-add")
        await pilot.press("2")
        await pilot.pause(0.5)
        unit = screen.query_one(DiffView).query(DiffUnit).first()

        def keyword_colour() -> str:
            return next(
                segment.style.color.triplet.hex
                for line in drawn(unit.content, 100)
                for segment in line
                if segment.text == "def" and segment.style and segment.style.color
            )

        assert keyword_colour() == "#bb9af7"  # looptui-dusk's syntax-keyword
        app.theme = "looptui-paper"
        await until(pilot, lambda: keyword_colour() == "#7a3e9d")  # and now looptui-paper's
        for width in (100, 60):  # an added line's tint runs to the edge at any width
            line = next(
                line
                for line in drawn(unit.content, width)
                if line[1].text == "+" and "return a + b" in "".join(s.text for s in line)
            )
            colours = {segment.style.color for segment in line if segment.style}
            assert len(colours) > 2  # the tint keeps the sign's and the syntax's colours
            assert sum(len(segment.text) for segment in line) == width
            assert line[-1].style is not None and line[-1].style.bgcolor is not None
        lines = drawn(unit.content, 14)  # so narrow that the added line wraps
        first = next(i for i, line in enumerate(lines) if len(line) > 1 and line[1].text == "+")
        tint = lines[first][-1].style.bgcolor  # type: ignore[union-attr]
        assert tint is not None and lines[first + 1][-1].style.bgcolor == tint  # type: ignore[union-attr]


async def test_verdicts_and_memory_tabs(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "fix-mean")
        await pilot.press("3")
        await pilot.pause(0.5)
        verdicts = screen.query_one(VerdictsView)
        titles = [str(w.render()) for w in verdicts.query(".iteration-title")]
        assert titles[0].startswith("Iteration 2 · verdict: done")
        assert titles[1].startswith("Iteration 1 · verdict: not done")
        checks = list(verdicts.query(Collapsible))
        # iteration 2: in the worktree, then on a clean checkout; iteration 1 failed at once.
        # Failures open, passes folded.
        assert [c.collapsed for c in checks] == [True, True, False]
        assert "clean checkout" in str(checks[1].title)
        assert "ZeroDivisionError" in str(checks[2].query_one(".check-output").render())
        await pilot.press("4")
        await pilot.pause(0.5)
        memory = screen.query_one(MemoryList)
        await until(pilot, lambda: len(memory.notes) == 3)
        lesson, progress, attempt = memory.notes  # newest first
        assert "goal met" in progress.text and attempt.iteration == 1
        assert lesson.kind.value == "lesson" and lesson.text.startswith("Check tests")
        await pilot.press("escape")
        assert isinstance(app.screen, GridScreen)


async def test_an_unknown_verdict_and_a_paused_run_show_as_such(tmp_path: Path) -> None:
    from looptui.engine import RunStatus, load_config
    from looptui.engine.config import CONFIG_NAME
    from test_evaluator import judged_repo

    repo, _ = judged_repo(tmp_path, ["EXIT"], evaluator_failures=1)
    async with open_app(repo, load_config(repo / CONFIG_NAME), tmp_path) as (app, pilot):
        screen = await open_run_of(app, pilot, "fix")
        summary = app.board.summaries[screen.run_id]
        assert summary.status is RunStatus.PAUSED and summary.needs_you
        assert summary.verdict is not None and summary.verdict.unknown
        await pilot.press("3")
        await pilot.pause(0.5)
        verdicts = screen.query_one(VerdictsView)
        titles = [str(w.render()) for w in verdicts.query(".iteration-title")]
        assert titles[0].startswith("Iteration 1 · verdict: unknown (judge, confidence 0%)")
        details = [str(w.render()) for w in verdicts.query(".detail")]
        assert any("reason: the evaluator could not answer" in text for text in details)


async def test_the_card_and_the_header_say_the_limit_feedback_raised_alike(
    tmp_path: Path,
) -> None:
    """Feedback gave the docs run (2 iterations) one more: both read "2/3", the card shortly
    and whole at the width of a three-column grid's card."""
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path, size=(148, 40)) as (app, pilot):
        run = await app.engine.start_run("docs")
        await wait_for_runs(app, pilot, [run.id])
        await app.engine.feedback(run.id, "Mention mean() of an empty list.")
        await wait_for_runs(app, pilot, [run.id])
        grid = app.screen
        assert isinstance(grid, GridScreen)
        cards = grid.cards
        assert (cards._columns, cards._card_width) == (3, 48)
        [line] = [s.text for s in cards._card_lines(0) if "iteration" in s.text]
        assert "iteration 2/3 (+1)" in line and "…" not in line, line
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        header = plain(app.screen.query_one("#run-title").render())
        assert "iteration 2/3 (1 iteration added by feedback)" in header, header
