"""A run's log opens on its newest lines at once, however long its history, and keeps the
reader's place while older lines are laid out above, the oldest dropped, or new ones added."""

from __future__ import annotations

from looptui.protocol.events import Event, OutputPrinted, ToolCalled
from looptui.tui.widgets.run_log import FIRST_PAINT, KEPT_EVENTS, RunLog
from tui_support import LogApp, until


def history(count: int, first: int = 0) -> list[Event]:
    return [Event("r1", OutputPrinted(f"line {n}"), 1, 0.0, n + 1) for n in range(first, count)]


def texts(log: RunLog) -> list[str]:
    return [strip.text.strip() for strip in log.lines]


def top_line(log: RunLog) -> str:
    """The text of the first row the log paints."""
    return log.render_line(0).text.strip()


def bottom_lines(log: RunLog) -> list[str]:
    return [log.render_line(y).text.strip() for y in range(log.size.height)]


async def test_a_long_history_shows_its_newest_lines_first_then_all_in_order() -> None:
    app = LogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(RunLog)
        log.add(history(KEPT_EVENTS))
        log.flush()
        # only the newest are laid out at once; the older ones follow, a chunk per refresh
        assert texts(log) == [f"│ line {n}" for n in range(KEPT_EVENTS - FIRST_PAINT, KEPT_EVENTS)]
        # on the newest lines once laid out (under load, a chunk may land before the anchor
        # catches up with it)
        await until(pilot, lambda: log.scroll_offset.y == log.max_scroll_y > 0)
        assert bottom_lines(log)[-1] == f"│ line {KEPT_EVENTS - 1}"
        await until(pilot, lambda: len(log.lines) == KEPT_EVENTS)
        assert texts(log) == [f"│ line {n}" for n in range(KEPT_EVENTS)]  # in order, none twice
        await until(pilot, lambda: log.scroll_offset.y == log.max_scroll_y)  # the newest lines
        assert bottom_lines(log)[-1] == f"│ line {KEPT_EVENTS - 1}"


async def test_older_lines_keep_the_reader_where_they_scrolled() -> None:
    app = LogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(RunLog)
        log.add(history(KEPT_EVENTS))
        log.flush()
        # the reader looks up before any older line is laid out
        log.scroll_to(y=0, animate=False, immediate=True)
        assert len(log.lines) == FIRST_PAINT
        in_view = top_line(log)
        assert in_view == f"│ line {KEPT_EVENTS - FIRST_PAINT}"
        await until(pilot, lambda: len(log.lines) == KEPT_EVENTS)
        await pilot.pause()
        assert top_line(log) == in_view  # the lines that were in view are still in view
        assert log.scroll_offset.y == KEPT_EVENTS - FIRST_PAINT


async def test_new_lines_follow_at_the_end_and_leave_a_reader_who_scrolled_up_in_place() -> None:
    app = LogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(RunLog)
        log.add(history(KEPT_EVENTS))
        log.flush()
        await until(pilot, lambda: len(log.lines) == KEPT_EVENTS)
        log.add(history(KEPT_EVENTS + 10, KEPT_EVENTS))
        await until(pilot, lambda: bottom_lines(log)[-1] == f"│ line {KEPT_EVENTS + 9}")
        assert log.scroll_offset.y == log.max_scroll_y  # followed
        await pilot.press("pageup", "pageup")
        await until(pilot, lambda: log.scroll_y == log.scroll_target_y < log.max_scroll_y)
        in_view, y = top_line(log), log.scroll_offset.y
        log.add(history(KEPT_EVENTS + 300, KEPT_EVENTS + 10))
        await until(pilot, lambda: texts(log)[-1] == f"│ line {KEPT_EVENTS + 299}")
        await pilot.pause()
        assert top_line(log) == in_view  # not pulled to the end, nor moved by the dropped lines
        assert log.scroll_offset.y == y - 290
        # the bound: the oldest events went, with their lines
        assert len(log.events) == KEPT_EVENTS and len(log.lines) == KEPT_EVENTS
        assert texts(log)[0] == "│ line 300"
        await pilot.press("end")
        await until(pilot, lambda: log.scroll_offset.y == log.max_scroll_y)
        log.add(history(KEPT_EVENTS + 301, KEPT_EVENTS + 300))
        await until(pilot, lambda: bottom_lines(log)[-1] == f"│ line {KEPT_EVENTS + 300}")
        assert log.scroll_offset.y == log.max_scroll_y  # following again


async def test_expanding_tool_calls_keeps_the_event_in_view() -> None:
    app = LogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(RunLog)
        calls = [
            Event("r1", ToolCalled("search", {"pattern": f"call {n}", "path": "src"}), 1, 0.0, n)
            for n in range(1, 1001)
        ]
        log.add(calls)
        log.flush()
        await until(pilot, lambda: len(log.lines) == 1000)  # one line each while compact
        log.scroll_to(y=400, animate=False, immediate=True)
        assert '"call 401"' not in top_line(log) and "call 401" in top_line(log)
        log.expanded = True
        await pilot.pause()
        assert top_line(log) == "⚙ search"  # the same call, now whole
        assert log.render_line(2).text.strip() == '"pattern": "call 401",'
        await until(pilot, lambda: len(log.lines) == 1000 * 5)
        await pilot.pause()
        assert top_line(log) == "⚙ search" and '"call 401"' in log.render_line(2).text
        log.scroll_end(animate=False, immediate=True)
        log.expanded = False
        await pilot.pause()
        assert "call 1000" in bottom_lines(log)[-1]
        assert log.scroll_offset.y == log.max_scroll_y
