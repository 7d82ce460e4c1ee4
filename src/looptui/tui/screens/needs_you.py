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
        Binding("enter", "choose", "Review / open", show=False),
        Binding("o", "open", "Open run"),
    ]

    @property
    def looptui(self) -> LooptuiApp:
        from looptui.tui.app import LooptuiApp

        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        waiting = self.looptui.board.needing_you()
        with Vertical(classes="dialog-box") as box:
            box.border_title = f"Needs you ({len(waiting)})"
            if not waiting:
                yield Static("Nothing waits for you. Runs that finish appear here.", id="nothing")
                return
            options = []
            for summary in waiting:
                run = summary.run
                action = "review" if summary.status in NEEDS_REVIEW else "decide"
                options.append(
                    Option(
                        f"{summary.status.value:<11} {run.loop:<16} {run.id}  "
                        f"{format.diff_stat(run.diff):<22} {action}",
                        id=run.id,
                    )
                )
            yield OptionList(*options, id="queue")

    def _chosen(self) -> str | None:
        options = self.query(OptionList)
        if not options:
            return None
        option_list = options.first()
        index = option_list.highlighted
        return None if index is None else option_list.get_option_at_index(index).id

    @on(OptionList.OptionSelected, "#queue")
    def action_choose(self) -> None:
        run_id = self._chosen()
        if run_id is None:
            return
        self.dismiss()
        summary = self.looptui.board.summaries[run_id]
        if summary.status in NEEDS_REVIEW:
            self.looptui.review_run(run_id)
        else:
            self.looptui.open_run(run_id)

    def action_open(self) -> None:
        run_id = self._chosen()
        if run_id is not None:
            self.dismiss()
            self.looptui.open_run(run_id)
