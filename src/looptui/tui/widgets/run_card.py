"""A run's card on the grid: one widget, rendered from its summary, repainted in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from looptui.engine.models import RunStatus
from looptui.tui import format
from looptui.tui.board import RunSummary

STATUS_MARK = {
    RunStatus.QUEUED: "◌",
    RunStatus.RUNNING: "●",
    RunStatus.SUCCEEDED: "✔",
    RunStatus.FAILED: "✘",
    RunStatus.STALLED: "◆",
    RunStatus.CANCELLED: "■",
    RunStatus.INTERRUPTED: "!",
    RunStatus.MERGED: "⇥",
    RunStatus.DISCARDED: "⌫",
}


class RunCard(Widget, can_focus=True):
    """Loop, agent, status, iteration k/N, elapsed, tokens and cost, verdict, diff, last line."""

    DEFAULT_CSS = """
    RunCard {
        height: 7;
        padding: 0 1;
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        background: $surface;
        &:focus { border: round $primary; background: $boost; }
        &.-running { border-title-color: $run-active; }
        &.-succeeded { border: round $needs-review; }
        &.-succeeded:focus { border: heavy $needs-review; }
        &.-failed, &.-stalled, &.-interrupted { border-title-color: $verdict-fail; }
        &.-merged, &.-discarded, &.-cancelled { opacity: 70%; }
        .run-card--muted { color: $text-muted; }
        .run-card--pass { color: $verdict-pass; }
        .run-card--fail { color: $verdict-fail; }
        .run-card--add { color: $diff-add-text; }
        .run-card--remove { color: $diff-remove-text; }
        .run-card--status { text-style: bold; }
    }
    RunCard.-running .run-card--status { color: $run-active; }
    RunCard.-succeeded .run-card--status { color: $needs-review; }
    RunCard.-failed .run-card--status, RunCard.-stalled .run-card--status,
    RunCard.-interrupted .run-card--status { color: $verdict-fail; }
    RunCard.-merged .run-card--status { color: $verdict-pass; }
    RunCard.-cancelled .run-card--status,
    RunCard.-discarded .run-card--status { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-card--muted",
        "run-card--pass",
        "run-card--fail",
        "run-card--add",
        "run-card--remove",
        "run-card--status",
    }

    def __init__(self, summary: RunSummary, clock: Callable[[], float]) -> None:
        super().__init__(id=f"run-{summary.id}")
        self.summary = summary
        self.clock = clock
        self._status_class = ""
        self.update_summary(summary)

    def update_summary(self, summary: RunSummary) -> None:
        """Take the run's latest summary; repaint on the next frame."""
        self.summary = summary
        status_class = f"-{summary.status.value}"
        if status_class != self._status_class:
            if self._status_class:
                self.remove_class(self._status_class)
            self.add_class(status_class)
            self._status_class = status_class
        self.border_title = f"{summary.run.loop} · {summary.run.agent}"
        self.border_subtitle = summary.id
        self.refresh()

    def render(self) -> RenderableType:
        summary, run = self.summary, self.summary.run
        style = self.get_component_rich_style
        muted = style("run-card--muted")

        status = Text(f"{STATUS_MARK[run.status]} {run.status.value}", style("run-card--status"))
        iteration = f"  iteration {summary.iteration}/{run.max_iterations}"
        elapsed = f"  {format.duration(summary.elapsed(self.clock()))}"
        line1 = Text.assemble(status, (iteration, muted), (elapsed, muted))
        tokens = run.input_tokens + run.output_tokens
        if tokens or run.cost_usd:
            line1.append(f"  {format.tokens(tokens)} tok {format.money(run.cost_usd)}", muted)

        verdict = summary.verdict
        if verdict is None:
            line2 = Text("no verdict yet", muted)
        else:
            mark, look = ("✔ done", "run-card--pass")
            if not verdict.done:
                mark, look = ("✘ not done", "run-card--fail")
            reason = f"  {verdict.reasons[0]}" if verdict.reasons else ""
            line2 = Text.assemble((mark, style(look)), (reason, muted))

        diff = run.diff
        line3 = Text.assemble(
            (f"+{diff.added}", style("run-card--add")),
            " ",
            (f"−{diff.removed}", style("run-card--remove")),
            (f"  in {diff.files} file{'s' if diff.files != 1 else ''}", muted),
        )
        if run.error and not run.status.is_active:
            line4 = Text(run.error, style("run-card--fail"))
        else:
            line4 = Text(summary.last_line or " ", muted)
        lines = [line1, line2, line3, line4]
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return Text("\n").join(lines)
