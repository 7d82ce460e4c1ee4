"""Opening a run whose store holds a long history: the newest lines show, scrolled to the end,
and live lines that follow leave a reader who scrolled up where they were."""

from __future__ import annotations

from pathlib import Path

from looptui.engine import Engine
from looptui.engine.store import Store
from looptui.protocol.events import OutputPrinted
from looptui.tui.screens.run import RunScreen
from looptui.tui.widgets.run_log import KEPT_EVENTS, RunLog
from tui_support import demo_repository, open_app, until, wait_for_runs

STORED = 20_000


async def emit_lines(store: Store, run_id: str, first: int, count: int) -> None:
    """Output lines written with the Store API, waiting for the writer as a run would."""
    for n in range(first, first + count):
        if store.crowded:
            await store.room()
        store.emit(run_id, OutputPrinted(f"stored line {n}"), iteration=1)
    await store.flush()


def painted(log: RunLog) -> list[str]:
    """The rows the log paints, as text."""
    return [log.render_line(y).text.strip() for y in range(log.size.height)]


async def test_a_run_with_a_long_history_opens_on_its_last_line(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        engine = app.engine
        assert isinstance(engine, Engine)
        run = await engine.start_run("docs")
        await wait_for_runs(app, pilot, [run.id])
        await emit_lines(engine.store, run.id, 0, STORED)
        last = f"│ stored line {STORED - 1}"

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == run.id
        log = app.screen.query_one(RunLog)
        await until(pilot, lambda: last in painted(log))
        assert painted(log)[-1] == last  # at the bottom of the view
        await until(pilot, lambda: log.scroll_offset.y == log.max_scroll_y > 0)
        assert log.has_focus  # so that the page keys scroll it
        await until(pilot, lambda: len(log.lines) == KEPT_EVENTS)  # the older ones, laid out
        assert log.lines[0].text.strip() == f"│ stored line {STORED - KEPT_EVENTS}"
        await until(pilot, lambda: log.scroll_offset.y == log.max_scroll_y)
        assert painted(log)[-1] == last

        await pilot.press("pageup", "pageup", "pageup")
        await until(pilot, lambda: log.scroll_y == log.scroll_target_y < log.max_scroll_y)
        in_view = painted(log)
        await emit_lines(engine.store, run.id, STORED, 100)
        newest = f"│ stored line {STORED + 99}"
        await until(pilot, lambda: log.lines[-1].text.strip() == newest)
        await pilot.pause()
        assert painted(log) == in_view  # the reader's place, kept
        assert newest not in painted(log) and log.scroll_offset.y < log.max_scroll_y

        await pilot.press("end")
        await until(pilot, lambda: painted(log)[-1] == newest)
        await emit_lines(engine.store, run.id, STORED + 100, 5)
        await until(pilot, lambda: painted(log)[-1] == f"│ stored line {STORED + 104}")
        assert log.scroll_offset.y == log.max_scroll_y  # following the live lines again
