"""The "needs you" queue: finished runs waiting for a human, reachable with `r` from anywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from looptui.tui import format
from looptui.tui.board import NEEDS_REVIEW
from looptui.tui.screens.dialog import Dialog

if TYPE_CHECKING:
    from looptui.tui.app import LooptuiApp


class NeedsYouScreen(Dialog[None]):
    """Runs awaiting review first, then runs that stopped short; enter opens the right screen."""

    DEFAULT_CSS = """
    NeedsYouScreen > .dialog-box {
        width: 100;
        max-height: 80%;
        border: thick $needs-review;
        padding: 0;
    }
    NeedsYouScreen OptionList { height: auto; max-height: 30; border: none; }
    NeedsYouScreen #nothing { padding: 1 2; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,r", "dismiss", "Close"),
        # priority: the queue's own `enter` (select, unshown) would hide it from the footer
        Binding("enter", "choose", "Review / decide", priority=True),
        Binding("o", "open", "Open run"),
    ]

    @property
    def looptui(self) -> LooptuiApp:
        from looptui.tui.app import LooptuiApp

        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(
                "Nothing waits for you. Runs to review or decide on appear here as they end.",
                id="nothing",
            )
            yield OptionList(id="queue")

    def on_mount(self) -> None:
        self._fill()

    def on_screen_resume(self) -> None:
        """Back from a run's review or screen: the queue as it is now (a merged run has left
        it), the cursor where it was, so on the next run to decide."""
        self._fill()

    def on_looptui_app_runs_changed(self) -> None:
        """A run finished, or one chosen here was merged: the queue follows."""
        self._fill()

    def _fill(self) -> None:
        waiting = self.looptui.board.needing_you()
        self.query_one(".dialog-box").border_title = f"Needs you ({len(waiting)})"
        option_list = self.query_one("#queue", OptionList)
        self.query_one("#nothing").display = not waiting
        option_list.display = bool(waiting)
        self.refresh_bindings()  # nothing to open once the queue is empty
        if [s.id for s in waiting] == [option.id for option in option_list.options]:
            return
        index = option_list.highlighted
        option_list.clear_options()
        for summary in waiting:
            run = summary.run
            action = "review" if summary.status in NEEDS_REVIEW else "decide"
            option_list.add_option(
                Option(
                    f"{summary.status.value:<11} {run.loop:<16} {run.id}  "
                    f"{format.diff_stat(run.diff):<22} {action}",
                    id=run.id,
                )
            )
        if waiting:
            option_list.highlighted = min(index or 0, len(waiting) - 1)
            option_list.focus()

    def _chosen(self) -> str | None:
        option_list = self.query_one("#queue", OptionList)
        index = option_list.highlighted if option_list.display else None
        return None if index is None else option_list.get_option_at_index(index).id

    # the queue stays under what it opened: merging, discarding or commenting there comes
    # back to it, with the next run to decide
    @on(OptionList.OptionSelected, "#queue")
    def action_choose(self) -> None:
        run_id = self._chosen()
        if run_id is None:
            return
        summary = self.looptui.board.summaries[run_id]
        if summary.status in NEEDS_REVIEW:
            self.looptui.review_run(run_id)
        else:
            self.looptui.open_run(run_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """With nothing in the queue, nothing to open or review."""
        if action in ("open", "choose"):
            return bool(self.looptui.board.needing_you())
        return True

    def action_open(self) -> None:
        run_id = self._chosen()
        if run_id is not None:
            self.looptui.open_run(run_id)
