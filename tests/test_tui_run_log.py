"""A run's log opens on its newest lines at once, however long its history."""

from __future__ import annotations

from textual.app import App, ComposeResult

from looptui.protocol.events import Event, OutputPrinted
from looptui.tui.themes import semantic_defaults
from looptui.tui.widgets.run_log import FIRST_PAINT, RunLog
from tui_support import until


class LogApp(App[None]):
    def get_css_variables(self) -> dict[str, str]:
        variables = super().get_css_variables()
        return {**semantic_defaults(variables), **variables}

    def compose(self) -> ComposeResult:
        yield RunLog(id="log")


def history(count: int) -> list[Event]:
    return [Event("r1", OutputPrinted(f"line {n}"), 1, 0.0, n + 1) for n in range(count)]


async def test_a_long_history_shows_its_newest_lines_first_then_all_in_order() -> None:
    app = LogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(RunLog)
        log.add(history(5000))
        log.flush()
        # the newest lines are written at once, before the older ones are laid out
        assert len(log.lines) <= FIRST_PAINT or not log._size_known
        await until(pilot, lambda: len(log.lines) == 5000)
        texts = [strip.text.strip() for strip in log.lines]
        assert texts == [f"│ line {n}" for n in range(5000)]  # in order, none twice
        await pilot.pause()
        assert log.scroll_offset.y == log.max_scroll_y  # still on the newest lines


async def test_older_lines_keep_the_reader_where_they_scrolled() -> None:
    app = LogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(RunLog)
        log.add(history(9000))
        log.flush()
        await until(pilot, lambda: bool(log.lines) and log._size_known)
        await pilot.pause()  # the first lines' own scroll to the end is done
        log.scroll_to(y=0, animate=False, immediate=True)  # the reader looks up at once
        first_in_view = log.lines[0].text.strip() if len(log.lines) < 9000 else None
        await until(pilot, lambda: len(log.lines) == 9000)
        if first_in_view is not None:  # the lines that were in view are still in view
            assert log.lines[int(log.scroll_offset.y)].text.strip() == first_in_view
