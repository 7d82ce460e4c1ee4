"""The new-run dialog: pick a loop, optionally its agent, optionally a different prompt."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, Select, TextArea

from looptui.engine.config import Config
from looptui.tui.screens.dialog import Dialog

NewRun = tuple[str, str | None, str | None]  # loop, prompt override, agent override
# the least terminal height at which the dialog fits every field with a blank line above each
# (24 lines of its 26); a shorter terminal drops those lines, so that the prompt stays in view
SPACED_HEIGHT = 27


class NewRunScreen(Dialog[NewRun | None]):
    """Dismisses with (loop, prompt or None, agent or None), or None when cancelled."""

    DEFAULT_CSS = """
    /* a fixed height, not auto: in a short terminal the fields scroll and the buttons stay */
    NewRunScreen > .dialog-box { height: 26; max-height: 95%; }
    NewRunScreen #fields { height: 1fr; }
    NewRunScreen Label { margin-top: 1; color: $text-muted; }
    NewRunScreen TextArea { height: 6; }
    /* by id: a Select's own row is a Horizontal too, which a margin here would make taller */
    NewRunScreen #buttons { height: auto; align-horizontal: right; margin-top: 1; }
    NewRunScreen Button { margin-left: 1; }
    /* at 80x24 every field, the prompt's first four lines among them, fits without the
       blank lines between them */
    NewRunScreen.-short Label, NewRunScreen.-short #buttons { margin-top: 0; }
    """
    # Textual declares it without ClassVar, which mypy then refuses in an override
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SPACED_HEIGHT, "-spaced")]  # noqa: RUF012
    # no auto-focus: Textual's centres the focused field in view, which in a short terminal
    # scrolls the first field's label out of it; on_mount focuses without scrolling
    AUTO_FOCUS = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start run", priority=True),
    ]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        loops = sorted(self.config.loops)
        with Vertical(classes="dialog-box") as box:
            box.border_title = "New run"
            with VerticalScroll(id="fields", can_focus=False):
                yield Label("Loop")
                yield Select(
                    [(name, name) for name in loops], value=loops[0], allow_blank=False, id="loop"
                )
                yield Label("Agent")
                yield Select(
                    [(name, name) for name in sorted(self.config.agents)],
                    id="agent",
                    prompt="the loop's own",
                )
                yield Label("Prompt (leave as is to use the loop's own)")
                yield TextArea(self.config.loops[loops[0]].prompt, id="prompt")
            with Horizontal(id="buttons"):
                yield Button("Start (ctrl+s)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#loop", Select).focus(scroll_visible=False)  # its label stays in view

    @on(Select.Changed, "#loop")
    def loop_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#prompt", TextArea).text = self.config.loops[event.value].prompt

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        loop = self.query_one("#loop", Select).value
        assert isinstance(loop, str)
        agent = self.query_one("#agent", Select).value
        prompt = self.query_one("#prompt", TextArea).text.strip()
        own = self.config.loops[loop].prompt.strip()
        self.dismiss(
            (
                loop,
                prompt if prompt and prompt != own else None,
                agent if isinstance(agent, str) else None,
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
