"""Snapshots of every screen, made deterministic: fixed run ids, commit dates, times, paths.

The runs are real (the demo's replay agents, real checks, real git); only what would differ
from one test run to the next is pinned. Update with `pytest --snapshot-update` and look at
the report before committing the new SVGs.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension, normalize_svg
from syrupy.assertion import SnapshotAssertion
from textual.pilot import Pilot

from looptui.engine import Config, Engine
from looptui.engine.config import CheckConfig
from looptui.engine.store.ledger import Outcome
from looptui.engine.triggers import After, Cron, Every, Watch
from looptui.engine.workspace import Repository
from looptui.tui.app import LooptuiApp
from looptui.tui.screens.loops import LoopsTable
from looptui.tui.screens.quit import QuitScreen
from looptui.tui.widgets.card_grid import CardGrid
from tests_paths import SNAPSHOT_ROOT
from tui_support import open_app, two_hunk_repository, until

# One fixed root (paths show in the pictures): every snapshot test runs in one xdist worker,
# which builds it once (`--dist loadgroup` in pyproject.toml).
pytestmark = pytest.mark.xdist_group("snapshots")

CHECKS = {
    # Shell checks whose output never varies (unittest prints its own timing).
    "fix-add": "grep -q 'return a + b' calc/arith.py || { echo 'add() still subtracts'; exit 1; }",
    "fix-mean": (
        "grep -q 'raise ValueError' calc/stats.py "
        "|| { echo 'mean([]) must raise ValueError'; exit 1; }"
    ),
    "docs": "grep -q '^# Usage' docs/usage.md",
    "speedup": "echo 'budget 0.5s, measured 1.0s'; exit 1",
}
NOW = 1_790_000_000.0
Action = Callable[[LooptuiApp, Pilot[None]], Awaitable[None]]


def pinned(config: Config) -> Config:
    loops = {
        name: dataclasses.replace(loop, checks=(CheckConfig("tests", CHECKS[name], 60.0),))
        for name, loop in config.loops.items()
    }
    return dataclasses.replace(config, loops=loops)


@pytest.fixture(scope="module")
def snapshot_repo() -> tuple[Path, Config]:
    """The demo repository after one run of each loop, with everything variable pinned."""
    root = SNAPSHOT_ROOT
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
            patch.setenv(name, "2026-11-01T12:00:00+00:00")
        patch.setenv("XDG_STATE_HOME", str(root / "state"))  # worktrees, wiped with the root
        counter = itertools.count(1)
        patch.setattr(
            "looptui.engine.supervisor.secrets.token_hex", lambda _: f"{next(counter):08x}"
        )
        with pytest.MonkeyPatch.context() as python:
            # the demo's looptui.toml names this interpreter: pin it, or every checkout of the
            # project (another path) would make other commits
            python.setattr("looptui.demo.sys.executable", "/usr/bin/python3")
            repo, config = two_hunk_repository(root / "demo")
        config = pinned(config)
        import asyncio

        asyncio.run(_run_each_loop(repo, config))
    with sqlite3.connect(Repository(repo).store_path) as db:
        for index, (run_id,) in enumerate(db.execute("SELECT id FROM runs ORDER BY id")):
            start = NOW - 600 + index * 60
            db.execute(
                "UPDATE runs SET created_at = ?, started_at = ?, finished_at = ? WHERE id = ?",
                (start, start + 1, start + 42, run_id),
            )
        db.execute("UPDATE check_results SET duration = 0.25")
        db.execute(  # the Prompt tab shows when each iteration started
            "UPDATE iterations SET started_at = number * 10 + "
            "(SELECT started_at FROM runs WHERE runs.id = iterations.run_id)"
        )
        db.execute(  # each ends when the next starts, the last with its run: no waits
            "UPDATE iterations AS i SET finished_at = coalesce((SELECT j.started_at FROM "
            "iterations j WHERE j.run_id = i.run_id AND j.number = i.number + 1), "
            "(SELECT finished_at FROM runs WHERE runs.id = i.run_id))"
        )
        # the search screen shows when each event and note was stored
        db.execute(
            "UPDATE events SET ts = (SELECT created_at + 2 FROM runs WHERE runs.id = run_id)"
        )
        db.execute(
            "UPDATE notes SET created_at = "
            "(SELECT created_at + 30 FROM runs WHERE runs.id = notes.run_id)"
        )
    return repo, config


async def _run_each_loop(repo: Path, config: Config) -> None:
    engine = await Engine.open(repo, {"PATH": "/usr/bin:/bin"}, config)
    try:
        for loop in ("speedup", "docs", "fix-mean", "fix-add"):
            run = await engine.start_run(loop)
            await engine.wait(run.id)
    finally:
        await engine.close()


async def screenshot(
    repo_and_config: tuple[Path, Config],
    tmp_path: Path,
    action: Action | None = None,
    size: tuple[int, int] = (160, 50),
) -> str:
    repo, config = repo_and_config
    async with open_app(repo, config, tmp_path, size=size, clock=NOW) as (app, pilot):
        await pilot.pause()
        if action is not None:
            await action(app, pilot)
        for widget in app.screen.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        await pilot.wait_for_scheduled_animations()
        svg = normalize_svg(app.export_screenshot())
    # review keeps its decisions in the store, which every snapshot shares: the next picture
    # must not open on this one's
    with sqlite3.connect(Repository(repo).store_path) as db:
        db.execute("DELETE FROM review_decisions")
    return svg


def first_card(loop: str) -> Action:
    async def go(app: LooptuiApp, pilot: Pilot[None]) -> None:
        grid = app.screen.query_one(CardGrid)
        grid.select(next(s.id for s in grid.runs if s.run.loop == loop))
        await pilot.pause()

    return go


def keys(*pressed: str, loop: str = "fix-add") -> Action:
    async def go(app: LooptuiApp, pilot: Pilot[None]) -> None:
        await first_card(loop)(app, pilot)
        for key in pressed:
            await pilot.press(key)
            await pilot.pause(0.3)
        # until the screen shown has no worker of its own still going (a diff loading, a
        # merge being previewed: those end by showing something), the log's follower aside
        await until(
            pilot,
            lambda: (
                not any(
                    w.is_running and w.node is app.screen and w.group != "follow"
                    for w in app.workers
                )
            ),
        )

    return go


def with_costs(grouped: bool) -> Action:
    """What each run spent (the demo's replays spend nothing), set on the board: the cards
    at three columns show it whole, the title totals it, and by loop each group's title."""

    async def go(app: LooptuiApp, pilot: Pilot[None]) -> None:
        spent = {"fix-add": (812_000, 40_500, 12.3456), "docs": (9_000, 1_000, 0.0042)}
        for summary in app.board.summaries.values():
            used_in, used_out, usd = spent.get(summary.run.loop, (0, 0, 0.0))
            summary.run = dataclasses.replace(
                summary.run, input_tokens=used_in, output_tokens=used_out, cost_usd=usd
            )
            app.board.dirty.add(summary.id)
        app.publish_soon()
        await until(pilot, lambda: "tok" in str(app.screen.query_one("#title").render()))
        if grouped:
            await pilot.press("g")

    return go


async def quitting(app: LooptuiApp, pilot: Pilot[None]) -> None:
    """The question `q` asks while runs go (the pictures' runs have all ended)."""
    await app.push_screen(QuitScreen(2))
    await until(pilot, lambda: isinstance(app.screen, QuitScreen))


SCREENS: dict[str, tuple[Action | None, tuple[int, int]]] = {
    "grid": (None, (160, 50)),
    "grid-80x24": (None, (80, 24)),
    "costs": (with_costs(grouped=False), (160, 50)),
    "costs-80x24": (with_costs(grouped=False), (80, 24)),
    "costs-by-loop": (with_costs(grouped=True), (160, 50)),
    "grid-grouped-by-status": (keys("g", "g"), (160, 50)),
    "grid-filter": (keys("slash", "f", "i", "x"), (160, 50)),
    "needs-you": (keys("r"), (160, 50)),
    "new-run": (keys("n"), (160, 50)),
    "help-grid": (keys("question_mark"), (160, 50)),
    "run-log": (keys("enter"), (160, 50)),
    "run-log-expanded": (keys("enter", "e", loop="docs"), (160, 50)),
    "run-diff": (keys("enter", "2"), (160, 50)),
    "run-diff-split": (keys("enter", "2", "u"), (160, 50)),
    "run-verdicts": (keys("enter", "3", loop="fix-mean"), (160, 50)),
    "run-80x24": (keys("enter"), (80, 24)),
    # fix-add's one hunk: its fix, and the debug print inside it left out by line
    "review": (keys("enter", "v", "enter", "j", "space", "escape"), (160, 50)),
    "review-80x24": (keys("enter", "v", "a"), (80, 24)),
    "merge-preview": (keys("enter", "v", "enter", "j", "space", "escape", "m"), (160, 50)),
    "review-lines": (keys("enter", "v", "enter", "j", "space"), (160, 50)),
    "review-lines-80x24": (keys("enter", "v", "enter", "j", "space"), (80, 24)),
    "merge-preview-debt": (keys("enter", "v", "m"), (160, 50)),
    "merge-preview-debt-80x24": (keys("enter", "v", "m"), (80, 24)),
    "comment": (keys("enter", "v", "c"), (160, 50)),
    "discard-confirm": (keys("enter", "v", "d", loop="speedup"), (160, 50)),
    "help-review": (keys("enter", "v", "question_mark"), (160, 50)),
    # at 80x24, every screen a user acts on (issue 13: nothing needed to act is hidden)
    "needs-you-80x24": (keys("r"), (80, 24)),
    "new-run-80x24": (keys("n"), (80, 24)),
    "help-grid-80x24": (keys("question_mark"), (80, 24)),
    "run-diff-80x24": (keys("enter", "2"), (80, 24)),
    "run-verdicts-80x24": (keys("enter", "3", loop="fix-mean"), (80, 24)),
    "merge-preview-80x24": (keys("enter", "v", "enter", "j", "space", "escape", "m"), (80, 24)),
    "comment-80x24": (keys("enter", "v", "c"), (80, 24)),
    "discard-confirm-80x24": (keys("enter", "v", "d", loop="speedup"), (80, 24)),
    "help-review-80x24": (keys("enter", "v", "question_mark"), (80, 24)),
    "grid-filter-80x24": (keys("slash", "f", "i", "x"), (80, 24)),
    "grid-grouped-by-status-80x24": (keys("g", "g"), (80, 24)),
    "costs-by-loop-80x24": (with_costs(grouped=True), (80, 24)),
    "run-log-expanded-80x24": (keys("enter", "e", loop="docs"), (80, 24)),
    "run-diff-split-80x24": (keys("enter", "2", "u"), (80, 24)),
    "quit": (quitting, (160, 50)),
    "quit-80x24": (quitting, (80, 24)),
}


@pytest.mark.parametrize("name", list(SCREENS))
async def test_screen(
    name: str,
    snapshot_repo: tuple[Path, Config],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
) -> None:
    action, size = SCREENS[name]
    svg = await screenshot(snapshot_repo, tmp_path, action, size)
    assert svg == snapshot(extension_class=SVGImageExtension)


async def test_light_theme_is_remembered(
    snapshot_repo: tuple[Path, Config], tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    repo, config = snapshot_repo
    async with open_app(repo, config, tmp_path, clock=NOW) as (app, pilot):
        app.theme = "looptui-paper"
        await pilot.pause()
    assert 'theme = "looptui-paper"' in (tmp_path / "settings.toml").read_text()
    svg = await screenshot(snapshot_repo, tmp_path)  # a new app reads the choice back
    assert svg == snapshot(extension_class=SVGImageExtension)


async def search_mean(app: LooptuiApp, pilot: Pilot[None]) -> None:
    """`f` on the grid, a query, enter: the hits, best first, the first highlighted."""
    from looptui.tui.screens.search import SearchScreen

    await pilot.press("f")
    await until(pilot, lambda: isinstance(app.screen, SearchScreen))
    await pilot.press(*"mean", "enter")
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    await until(pilot, lambda: bool(screen.hits) and screen.query_one("#hits").has_focus)


@pytest.mark.parametrize("size", [(160, 50), (80, 24)], ids=["160x50", "80x24"])
async def test_search_screen(
    size: tuple[int, int],
    snapshot_repo: tuple[Path, Config],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the times shown are local
    time.tzset()
    try:
        svg = await screenshot(snapshot_repo, tmp_path, search_mean, size)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert svg == snapshot(extension_class=SVGImageExtension)


def with_triggers(config: Config) -> Config:
    """Triggers whose every state the loops view words (one per loop at least)."""
    triggers = {
        "fix-add": (Cron("0 3 * * *", name="nightly"), Every(3600.0, name="hourly")),
        "docs": (Watch(("docs/**",), name="on-docs"), After("fix-add", name="after-add")),
        "speedup": (Cron("0 6 * * 1", timezone="Europe/Paris", name="weekly"),),
    }
    loops = {
        name: dataclasses.replace(loop, triggers=triggers.get(name, ()))
        for name, loop in config.loops.items()
    }
    return dataclasses.replace(config, loops=loops)


async def open_loops(app: LooptuiApp, pilot: Pilot[None]) -> None:
    """The stored schedule and a few firings, at fixed times, then the loops view. `nightly`
    was due two hours before NOW and is still not fired (no service ran): overdue on the
    wall clock, which is past NOW for good."""
    store = app.engine.store  # type: ignore[attr-defined]
    if not await store.firings("fix-add"):  # the repository is the module's: once
        await store.set_schedule("fix-add", "nightly", next_due_at=NOW - 7200)
        await store.set_schedule("fix-add", "hourly", next_due_at=NOW + 1800, paused=True)
        [run] = [run for run in await store.runs() if run.loop == "fix-add"]
        started = await store.record_firing(
            "fix-add", "nightly", due_at=NOW - 86400, fired_at=NOW - 86400
        )
        await store.settle_firing(started, Outcome.STARTED, run_id=run.id)
        await store.record_firing(
            "fix-add",
            "hourly",
            due_at=NOW - 3600,
            fired_at=NOW - 3599,
            outcome=Outcome.SKIPPED,
            reason="a run of the loop was going",
        )
        nothing = await store.record_firing("fix-add", "manual", due_at=NOW - 60, fired_at=NOW - 60)
        await store.settle_firing(nothing, Outcome.NOTHING_TO_DO, reason="the goal already holds")
    await pilot.press("L")
    await until(pilot, lambda: bool(app.screen.query_one("#firings", LoopsTable).row_count))


@pytest.mark.parametrize("size", [(160, 50), (80, 24)], ids=["160x50", "80x24"])
async def test_loops_screen(
    size: tuple[int, int],
    snapshot_repo: tuple[Path, Config],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the times shown are local
    time.tzset()
    try:
        repo, config = snapshot_repo
        svg = await screenshot((repo, with_triggers(config)), tmp_path, open_loops, size)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert svg == snapshot(extension_class=SVGImageExtension)


@pytest.mark.parametrize("size", [(160, 50), (80, 24)], ids=["160x50", "80x24"])
async def test_prompt_tab(
    size: tuple[int, int],
    snapshot_repo: tuple[Path, Config],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the times shown are local
    time.tzset()
    try:
        action = keys("enter", "5", loop="fix-mean")
        svg = await screenshot(snapshot_repo, tmp_path, action, size)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert svg == snapshot(extension_class=SVGImageExtension)


MEMORY_SCREENS: dict[str, tuple[Action, tuple[int, int]]] = {
    "run-memory": (keys("enter", "4", loop="fix-mean"), (160, 50)),
    "run-memory-80x24": (keys("enter", "4", loop="fix-mean"), (80, 24)),
    "loop-memory": (keys("m", loop="speedup"), (160, 50)),
    "loop-memory-80x24": (keys("m", loop="speedup"), (80, 24)),
    "loop-memory-all": (keys("m", "t", loop="speedup"), (160, 50)),
    "note-sources": (keys("enter", "4", "s", loop="fix-mean"), (160, 50)),
    "loop-memory-all-80x24": (keys("m", "t", loop="speedup"), (80, 24)),
    "note-sources-80x24": (keys("enter", "4", "s", loop="fix-mean"), (80, 24)),
    "note-edit": (keys("enter", "4", "e", loop="fix-mean"), (160, 50)),
    "note-edit-80x24": (keys("enter", "4", "e", loop="fix-mean"), (80, 24)),
}


@pytest.mark.parametrize("name", list(MEMORY_SCREENS))
async def test_memory_screen(
    name: str,
    snapshot_repo: tuple[Path, Config],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # each note's time is local
    time.tzset()
    try:
        action, size = MEMORY_SCREENS[name]
        svg = await screenshot(snapshot_repo, tmp_path, action, size)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert svg == snapshot(extension_class=SVGImageExtension)
