"""The loops view: each loop's triggers with their next fire time, the selected loop's last
firings from the ledger, and the keys to fire a loop now and to pause or resume a trigger.

The supervisor decides everything (what is due, what a firing does); this screen asks it,
words the answers as `looptui loops` does (`engine/triggers/wording.py`) and passes the keys
on. It asks again every few seconds and after each key, since the service fires by itself.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Static

from looptui.engine import LooptuiError
from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.triggers.overview import LoopState, TriggerState
from looptui.engine.triggers.wording import (
    NOT_SCHEDULED,
    UNDONE,
    loop_line,
    moment,
    outcome_text,
    when,
)
from looptui.tui.app import LooptuiApp
from looptui.tui.board import RunSummary
from looptui.tui.widgets.footer import KeysFooter

REFRESH_INTERVAL = 3.0  # seconds: next fire times count down, the service fires on its own
FIRINGS_SHOWN = 20
Row = tuple[str, str | None]  # (loop, trigger); None: a loop with no trigger
Cells = tuple[tuple[str, str | None], ...]  # each cell's text and component class


class LoopsTable(DataTable[Text]):
    """A table whose cells take their colours from the theme (overdue, paused, failed)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "loops-table--loop",
        "loops-table--overdue",
        "loops-table--paused",
        "loops-table--undone",
        "loops-table--muted",
    }

    def show(self, rows: list[tuple[str, Cells]]) -> None:
        """Lay out `rows` (key, cells), keeping the cursor on the row it was on."""
        before = self.key_at_cursor()
        self.clear()
        for key, cells in rows:
            self.add_row(*(self._cell(text, role) for text, role in cells), key=key)
        keys = [key for key, _ in rows]
        if before in keys:
            self.move_cursor(row=keys.index(before), animate=False)

    def key_at_cursor(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.is_valid_row_index(self.cursor_row):
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def _cell(self, text: str, role: str | None) -> Text:
        style = self.get_component_rich_style(f"loops-table--{role}") if role else ""
        return Text(text, style=style, no_wrap=True)


class LoopsScreen(Screen[None]):
    """Every configured loop with its triggers and its last firings."""

    CSS_PATH = "loops.tcss"
    AUTO_FOCUS = "#triggers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("f", "fire", "Fire now", tooltip="Fire the selected loop now, as a trigger would"),
        Binding("p", "pause", "Pause/resume", tooltip="Pause the selected trigger, or resume it"),
        Binding("m", "memory", "Memory", tooltip="The selected loop's lessons and notes"),
        # priority: the focused table would take enter for itself; when no firing with a run
        # is selected the action is off and enter goes on to the table
        Binding(
            "enter", "open_run", "Open run", tooltip="Open the selected firing's run", priority=True
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="loops")
        self.states: dict[str, LoopState] = {}
        self.firings: list[Firing] = []
        self.shown_loop: str | None = None  # whose firings are shown
        self._rows: dict[str, Row] = {}
        self._trigger_cells: list[tuple[str, Cells]] = []
        self._firing_cells: list[tuple[str, Cells]] = []
        self._complaint: str | None = None

    @property
    def looptui(self) -> LooptuiApp:
        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="loops-title")
        yield Static(f"[b]{NOT_SCHEDULED}[/]", id="not-scheduled", classes="-hidden")
        yield LoopsTable(id="triggers", cursor_type="row")
        yield Static(id="firings-title")
        yield LoopsTable(id="firings", cursor_type="row")
        yield Static(
            "No loops: write them in looptui.toml (looptui init).", id="no-loops", classes="-hidden"
        )
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#triggers", LoopsTable).add_columns("loop", "trigger", "fires", "what")
        self.query_one("#firings", LoopsTable).add_columns("#", "fired", "by", "outcome", "run")
        self.update_title()
        self.set_interval(REFRESH_INTERVAL, self._tick, name="loops refresh")

    def on_screen_resume(self) -> None:
        """Shown (first, or again after a run's screen): what changed meanwhile, now."""
        self.reload()

    def _tick(self) -> None:
        if self.is_current:  # under another screen, nobody looks
            self.reload()

    # -- reading -------------------------------------------------------------------------------

    @work(group="loops", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Ask the supervisor for the loops and the selected loop's firings, then show them."""
        engine = self.looptui.engine
        try:
            states = await engine.loops()
            loop = self._loop_to_show(states)
            firings = await engine.firing_history(loop, FIRINGS_SHOWN) if loop else []
        except LooptuiError as exc:
            self._complain(str(exc))
            return
        self._complaint = None
        self.states = {state.name: state for state in states}
        self.shown_loop, self.firings = loop, firings
        self.show()

    def _loop_to_show(self, states: list[LoopState]) -> str | None:
        selected = self.selected()
        names = [state.name for state in states]
        if selected is not None and selected[0] in names:
            return selected[0]
        return names[0] if names else None

    def _complain(self, text: str) -> None:
        """Say why the loops cannot be read, once (not at every refresh)."""
        if text != self._complaint:
            self._complaint = text
            self.notify(text, title="cannot read the loops", severity="error")

    # -- showing -------------------------------------------------------------------------------

    def show(self) -> None:
        states = list(self.states.values())
        has_triggers = any(state.triggers for state in states)
        scheduled = any(state.scheduled for state in states)
        self.query_one("#not-scheduled").set_class(scheduled or not has_triggers, "-hidden")
        self.query_one("#no-loops").set_class(bool(states), "-hidden")
        for name in ("#triggers", "#firings-title", "#firings"):
            self.query_one(name).set_class(not states, "-hidden")
        now = self.looptui.clock()
        trigger_cells: list[tuple[str, Cells]] = []
        self._rows = {}
        for state in states:
            rows: list[tuple[str | None, Cells]] = [
                (t.name, _trigger_cells(t, now)) for t in state.triggers
            ] or [(None, (("", None), ("no triggers: run by hand", "muted"), ("", None)))]
            for index, (trigger, cells) in enumerate(rows):
                key = f"{state.name}\t{trigger or ''}"
                self._rows[key] = (state.name, trigger)
                loop_cell = (state.name if index == 0 else "", "loop")
                trigger_cells.append((key, (loop_cell, *cells)))
        if trigger_cells != self._trigger_cells:  # unchanged: no layout, the cursor stays
            self._trigger_cells = trigger_cells
            self.query_one("#triggers", LoopsTable).show(trigger_cells)
        board = self.looptui.board.summaries
        firing_cells = [
            (str(f.id), _firing_cells(f, board.get(f.run_id or ""))) for f in self.firings
        ]
        if firing_cells != self._firing_cells:
            self._firing_cells = firing_cells
            self.query_one("#firings", LoopsTable).show(firing_cells)
        self._show_firings_title()
        self.update_title()
        self.refresh_bindings()

    def _show_firings_title(self) -> None:
        state = self.states.get(self.shown_loop or "")
        if state is None:
            text = ""
        else:
            text = f"[b]{loop_line(state)}[/]  ·  " + (
                "last firings" if self.firings else "no firings yet: [b]f[/] fires it now"
            )
        self.query_one("#firings-title", Static).update(text)

    def update_title(self) -> None:
        states = self.states.values()
        triggers = sum(len(state.triggers) for state in states)
        parts = [
            f"[b]Loops[/]  {self.looptui.repository_name}",
            f"{len(states)} loop{'s' if len(states) != 1 else ''}",
            f"{triggers} trigger{'s' if triggers != 1 else ''}",
            self.looptui.connection_line,
        ]
        self.query_one("#loops-title", Static).update("  ·  ".join(parts))

    @on(LooptuiApp.ConnectionChanged)
    def connection_changed(self) -> None:
        self.update_title()

    @on(DataTable.RowHighlighted, "#triggers")
    def trigger_selected(self) -> None:
        """Another loop selected: its firings, now."""
        selected = self.selected()
        if selected is not None and selected[0] != self.shown_loop:
            self.reload()
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#firings")
    def firing_selected(self) -> None:
        self.refresh_bindings()

    # -- what is selected ----------------------------------------------------------------------

    def selected(self) -> Row | None:
        """The loop and trigger under the triggers' cursor."""
        key = self.query_one("#triggers", LoopsTable).key_at_cursor()
        return self._rows.get(key) if key is not None else None

    def selected_trigger(self) -> TriggerState | None:
        selected = self.selected()
        state = self.states.get(selected[0]) if selected else None
        if state is None or selected is None:
            return None
        return next((t for t in state.triggers if t.name == selected[1]), None)

    def selected_firing(self) -> Firing | None:
        key = self.query_one("#firings", LoopsTable).key_at_cursor()
        return next((f for f in self.firings if str(f.id) == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("fire", "memory"):
            return self.selected() is not None
        if action == "pause":
            return self.selected_trigger() is not None
        if action == "open_run":
            firing = self.selected_firing()
            focused = self.focused is not None and self.focused.id == "firings"
            return focused and firing is not None and firing.run_id is not None
        return True

    # -- actions -------------------------------------------------------------------------------

    def action_fire(self) -> None:
        selected = self.selected()
        if selected is not None:
            self.fire(selected[0])

    @work(group="fire", exit_on_error=False)
    async def fire(self, loop: str) -> None:
        """Fire `loop` now (a worker: the supervisor answers once the firing is decided, which
        may be once its run's first agent turn began)."""
        try:
            firing = await self.looptui.engine.fire(loop)
        except LooptuiError as exc:
            self.notify(str(exc), title=f"{loop} not fired", severity="error")
            return
        self.notify(
            f"firing #{firing.id}: {outcome_text(firing)}",
            title=f"fired {loop}",
            severity="warning" if firing.outcome in UNDONE else "information",
            timeout=6,
        )
        self.reload()

    async def action_pause(self) -> None:
        selected, trigger = self.selected(), self.selected_trigger()
        if selected is None or trigger is None:
            return
        loop = selected[0]
        engine = self.looptui.engine
        try:
            if trigger.paused:
                names = await engine.unpause(loop, trigger.name)
            else:
                names = await engine.pause(loop, trigger.name)
        except LooptuiError as exc:
            self.notify(str(exc), title="not changed", severity="error")
            return
        verb = "resumed" if trigger.paused else "paused"
        self.notify(f"{verb} {loop}: {', '.join(names)}", timeout=4)
        self.reload()

    def action_memory(self) -> None:
        selected = self.selected()
        if selected is not None:
            self.looptui.open_memory(selected[0])

    def action_open_run(self) -> None:
        firing = self.selected_firing()
        if firing is not None and firing.run_id is not None:
            self.looptui.open_run(firing.run_id)


def _trigger_cells(trigger: TriggerState, now: float) -> Cells:
    role = "overdue" if trigger.overdue else "paused" if trigger.paused else None
    return ((trigger.name, None), (when(trigger, now), role), (trigger.description, None))


def _firing_cells(firing: Firing, run: RunSummary | None) -> Cells:
    """The firing's cells; its run's status as the board has it now, when it has it."""
    role = "undone" if firing.outcome in UNDONE else None
    if firing.outcome in (Outcome.COALESCED, Outcome.NOTHING_TO_DO, Outcome.MISSED):
        role = "muted"
    return (
        (f"#{firing.id}", None),
        (moment(firing.fired_at), None),
        (firing.trigger, None),
        (outcome_text(firing), role),
        (f"{firing.run_id} {run.status}" if run else firing.run_id or "", None),
    )
