"""The worktree at hand: the file under the cursor in $EDITOR, a shell in the worktree (the
app suspended meanwhile), the worktree's path copied, a run discarded from the grid, and what
runs cost, whole on every card and totalled."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.drivers.headless_driver import HeadlessDriver

from conftest import git
from looptui.engine import RunStatus
from looptui.engine.models import ReviewTally
from looptui.engine.workspace import Repository
from looptui.tui.format import path_tail
from looptui.tui.screens.confirm import ConfirmScreen
from looptui.tui.screens.grid import GridScreen
from looptui.tui.screens.review import ReviewScreen
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.card_grid import CardGrid
from looptui.tui.widgets.diff_view import DiffView
from looptui.tui.worktree import editor_argv
from tui_support import demo_repository, open_app, until, wait_for_runs


class Terminal:
    """The one thing faked: a terminal that can be handed over (the headless driver cannot),
    recording when the app let it go and took it back."""

    def __init__(self, record: Path) -> None:
        self.record = record
        self.moments: list[str] = []

    def suspended(self) -> None:
        self.moments.append("suspended" + (" (ran already)" if self.record.exists() else ""))

    def resumed(self) -> None:
        self.moments.append("resumed" + (" (ran)" if self.record.exists() else ""))


@pytest.fixture
def terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    seen = Terminal(tmp_path / "record")
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    monkeypatch.setattr(HeadlessDriver, "suspend_application_mode", lambda self: seen.suspended())
    monkeypatch.setattr(HeadlessDriver, "resume_application_mode", lambda self: seen.resumed())
    yield seen


def recorder(directory: Path, name: str, record: Path) -> Path:
    """A program that writes where it ran and its arguments, one a line, then exits."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text(
        f'#!/bin/sh\n{{ pwd -P; for a in "$@"; do printf "%s\\n" "$a"; done; }} > "{record}"\n'
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def recorded(record: Path) -> tuple[Path, list[str]]:
    cwd, *argv = record.read_text().splitlines()
    return Path(cwd), argv


async def test_o_in_review_opens_the_file_at_its_first_added_line_in_editor(
    tmp_path: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = recorder(tmp_path / "bin dir", "vim", terminal.record)  # a space: never a shell
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"'{editor}'")
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        app.review_run(run.id)
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.patch.keys)
        await pilot.press("o")
        await until(pilot, lambda: "resumed (ran)" in terminal.moments)
        worktree = Path(run.worktree).resolve()
        cwd, argv = recorded(terminal.record)
        assert cwd == worktree
        line, path = argv
        assert path == str(worktree / "calc" / "arith.py")
        source = (worktree / "calc" / "arith.py").read_text().splitlines()
        # the hunk's first added line: the debugging line the agent slipped into the fix
        assert source[int(line.removeprefix("+")) - 1] == "    print('debug: add', a, b)"
        assert terminal.moments == ["suspended", "resumed (ran)"]
        assert isinstance(app.screen, ReviewScreen)  # and the app goes on where it was
        # line mode: the line under its cursor, the last changed line of the hunk
        terminal.record.unlink()
        await pilot.press("enter", "j", "j", "j")
        view = app.screen.query_one(DiffView)
        assert view.cursor is not None and view.line_cursor is not None
        under = app.screen.selection.line_hunk(view.cursor).lines[view.line_cursor]
        assert under.new_number is not None and under.text != "    print('debug: add', a, b)"
        await pilot.press("o")
        await until(pilot, lambda: terminal.moments.count("resumed (ran)") == 2)
        line, path = recorded(terminal.record)[1]
        assert source[int(line.removeprefix("+")) - 1] == under.text


async def test_o_in_the_diff_tab_speaks_to_code_style_editors_and_says_when_they_fail(
    tmp_path: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = recorder(tmp_path / "bin", "code", terminal.record)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{code} --wait")
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("docs")
        await wait_for_runs(app, pilot, [run.id])
        app.open_run(run.id)
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        await pilot.press("o")  # the log: no file to open, the key does nothing
        await pilot.pause()
        assert not terminal.moments
        await pilot.press("2")
        await until(pilot, lambda: bool(screen.query_one("#run-diff").units))  # type: ignore[attr-defined]
        await pilot.press("o")
        await until(pilot, lambda: "resumed (ran)" in terminal.moments)
        worktree = Path(run.worktree).resolve()
        assert recorded(terminal.record) == (
            worktree,
            ["--wait", "-g", f"{worktree / 'docs' / 'usage.md'}:1"],
        )
        code.write_text("#!/bin/sh\nexit 3\n")
        await pilot.press("o")
        await until(pilot, lambda: len(terminal.moments) == 4)
        await until(
            pilot, lambda: any("code exited with 3" in n.message for n in app._notifications)
        )


async def test_shell_and_copy_from_the_grid_and_discard_with_confirm(
    tmp_path: Path,
    terminal: Terminal,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    shell = recorder(tmp_path / "bin", "fish", terminal.record)
    monkeypatch.setenv("SHELL", str(shell))
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-add")
        await wait_for_runs(app, pilot, [run.id])
        assert isinstance(app.screen, GridScreen)
        worktree = Path(run.worktree)
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: "resumed (ran)" in terminal.moments)
        assert recorded(terminal.record) == (worktree.resolve(), [])
        said = capfd.readouterr().out  # on the terminal, before the shell's prompt
        assert f"a shell in the run's worktree {worktree}; `exit` comes back to looptui" in said

        await pilot.press("y")
        assert app.clipboard == str(worktree)
        await until(pilot, lambda: any(str(worktree) in n.message for n in app._notifications))

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # declined: nothing happens
        await until(pilot, lambda: isinstance(app.screen, GridScreen))
        assert worktree.is_dir() and git(repo, "branch", "--list", run.branch).strip()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.board.summaries[run.id].status is RunStatus.DISCARDED)
        assert not worktree.exists()
        assert not git(repo, "branch", "--list", run.branch).strip()
        assert run.branch not in git(repo, "worktree", "list")
        # the worktree is gone: the keys say so instead of running anything
        terminal.record.unlink()
        await pilot.press("exclamation_mark", "y")
        await until(pilot, lambda: any("are gone" in n.message for n in app._notifications))
        assert not terminal.record.exists()
        assert not app.screen.check_action("discard", ())  # nothing left to discard


def test_editor_forms_and_paths_cut_to_the_width(tmp_path: Path) -> None:
    path = tmp_path / "a file.py"
    assert editor_argv(["nano"], path, 7) == ["nano", "+7", str(path)]
    assert editor_argv(["emacsclient", "-t"], path, 7) == ["emacsclient", "-t", "+7", str(path)]
    assert editor_argv(["/opt/bin/codium"], path, 7) == ["/opt/bin/codium", "-g", f"{path}:7"]
    long = "/var/tmp/state/looptui/worktrees/demo-83ac735e/00000004"
    assert path_tail(long, 80) == long
    assert path_tail(long, 30) == "…/demo-83ac735e/00000004"
    assert len(path_tail(long, 30)) <= 30


def spend(repo: Path, by_loop: dict[str, tuple[int, int, float]]) -> None:
    """What each loop's run spent, into the store; the other loops' runs spent nothing (in
    place of what the demo's replays say they spent)."""
    with sqlite3.connect(Repository(repo).store_path) as db:
        db.execute("UPDATE runs SET input_tokens = 0, output_tokens = 0, cost_usd = 0")
        for loop, (used_in, used_out, usd) in by_loop.items():
            db.execute(
                "UPDATE runs SET input_tokens = ?, output_tokens = ?, cost_usd = ? WHERE loop = ?",
                (used_in, used_out, usd, loop),
            )


async def test_costs_are_whole_on_three_column_cards_and_totalled(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    loops = ("fix-add", "fix-mean", "docs", "speedup")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        ids = [(await app.engine.start_run(loop)).id for loop in loops]
        await wait_for_runs(app, pilot, ids)
        # a second run of fix-add: a loop's total is more than one run's
        await wait_for_runs(app, pilot, [(await app.engine.start_run("fix-add")).id])
        # the first merged unread: its card says so, beside what it cost
        unread = ReviewTally(hunks=1, lines=2, unread_hunks=1, unread_lines=2)
        await app.engine.merge(ids[0], review=unread)
    spend(repo, {"fix-add": (812_000, 40_500, 12.3456), "docs": (9_000, 1_000, 0.0042)})
    async with open_app(repo, config, tmp_path, size=(160, 50)) as (app, pilot):
        grid = app.screen.query_one(CardGrid)
        assert grid._columns == 3
        cards = {
            s.run.loop: "\n".join(strip.text for strip in grid._card_lines(i))
            for i, s in enumerate(grid.runs)
        }
        merged = next(i for i, s in enumerate(grid.runs) if s.id == ids[0])
        card = "\n".join(strip.text for strip in grid._card_lines(merged))
        assert "852.5k tok $12.35" in card and "reviewed 0/2 lines, decided 0/1" in card
        assert "…" not in card
        assert "852.5k tok $12.35" in cards["fix-add"]
        assert "10.0k tok $0.0042" in cards["docs"]
        assert "tok" not in cards["fix-mean"]
        assert "…" not in cards["fix-add"]
        title = str(app.screen.query_one("#title").render())
        assert "1.7M tok $24.70" in title  # both runs of fix-add, and docs
        await pilot.press("g")  # by loop: each loop's total in its title
        await pilot.pause()
        lines = [grid.render_line(y).text for y in range(grid.size.height)]
        assert any(line.startswith("fix-add (2)  ·  1.7M tok $24.69") for line in lines)
        assert any(line.startswith("docs (1)  ·  10.0k tok $0.0042") for line in lines)
        assert any(line.startswith("fix-mean (1)") and "tok" not in line for line in lines)
