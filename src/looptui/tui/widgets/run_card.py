"""One run's card, drawn by hand as a few lines of cells: a border with the loop (and the
agent, when it is not named after the loop) on top and the run's id below, around four lines
of body: status, iteration and working time; the last verdict; the diff, cost and review;
the last line of the log, or why the run ended.

A Rich Panel would cost several times as much, and a busy grid draws dozens of cards a
second; the grid keeps what this draws until the run changes.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from looptui.engine.landing import reviewed_line
from looptui.engine.models import WORKSPACE_GONE, RunStatus, status_reason
from looptui.tui import format
from looptui.tui.board import RunSummary
from looptui.words import counted

STATUS_MARK = {
    RunStatus.QUEUED: "◌",
    RunStatus.RUNNING: "●",
    RunStatus.SUCCEEDED: "✔",
    RunStatus.UNCHANGED: "=",
    RunStatus.FAILED: "✘",
    RunStatus.STALLED: "◆",
    RunStatus.PAUSED: "‖",
    RunStatus.CANCELLED: "■",
    RunStatus.INTERRUPTED: "!",
    RunStatus.DEFERRED: "◷",
    RunStatus.MERGED: "⇥",
    RunStatus.DISCARDED: "⌫",
}
STATUS_LOOK = {
    RunStatus.QUEUED: "muted",
    RunStatus.RUNNING: "active",
    RunStatus.SUCCEEDED: "review",
    RunStatus.UNCHANGED: "pass",
    RunStatus.FAILED: "fail",
    RunStatus.STALLED: "fail",
    RunStatus.PAUSED: "review",
    RunStatus.CANCELLED: "muted",
    RunStatus.INTERRUPTED: "fail",
    RunStatus.DEFERRED: "muted",
    RunStatus.MERGED: "pass",
    RunStatus.DISCARDED: "muted",
}

# a component class of the grid ("card-grid--muted"...) to the style the theme gives it
Styler = Callable[[str], Style]


def card_title(summary: RunSummary) -> str:
    """The loop, and the agent when it is not the loop's namesake ("fix-add", not
    "fix-add · fix-add")."""
    run = summary.run
    return run.loop if run.agent == run.loop else f"{run.loop} · {run.agent}"


def draw_card(
    summary: RunSummary,
    *,
    width: int,
    cursor: bool,
    now: float,
    limit: int | None,
    style: Styler,
    console: Console,
) -> list[Strip]:
    """The card's lines, `width` cells each: heavier borders under the cursor, and the
    border of a run awaiting review in the review colour."""
    card = style("card-grid--card") + (style("card-grid--cursor") if cursor else Style())
    border = card + style("card-grid--border-cursor" if cursor else "card-grid--border")
    if summary.status is RunStatus.SUCCEEDED and not cursor:
        border = card + style("card-grid--review")
    corner_tl, corner_tr, corner_bl, corner_br, across, down = "┏┓┗┛━┃" if cursor else "╭╮╰╯─│"
    inner = width - 4
    title = Text(f" {card_title(summary)} ", style=card)
    title.truncate(max(0, width - 4), overflow="ellipsis")
    subtitle = Text(f" {summary.id} ", style=card + style("card-grid--muted"))
    top = [Segment(corner_tl + across, border), *title.render(console)]
    top.append(Segment(across * max(0, width - 3 - title.cell_len) + corner_tr, border))
    bottom = [Segment(corner_bl + across * max(0, width - 3 - subtitle.cell_len), border)]
    bottom += [*subtitle.render(console), Segment(across + corner_br, border)]
    lines = [Strip(top).adjust_cell_length(width, card)]
    left, right = Segment(down + " ", border), Segment(" " + down, border)
    for text in card_body(summary, inner=inner, now=now, limit=limit, style=style):
        text.truncate(inner, overflow="ellipsis", pad=True)
        body = Segment.apply_style(text.render(console), style=card)
        lines.append(Strip([left, *body, right]).adjust_cell_length(width, card))
    lines.append(Strip(bottom).adjust_cell_length(width, card))
    return lines


def card_body(
    summary: RunSummary, *, inner: int, now: float, limit: int | None, style: Styler
) -> list[Text]:
    """The four lines inside the border, `inner` cells wide at most."""
    run = summary.run
    muted = style("card-grid--muted")
    look = style(f"card-grid--{STATUS_LOOK[run.status]}") + Style(bold=True)
    iterations = format.iteration_short(summary.iteration, run, limit)
    line1 = Text.assemble(
        (f"{STATUS_MARK[run.status]} {run.status_label}", look),
        (f"  {iterations}", muted),
        (f"  {format.duration(summary.working(now))}", muted),  # the waits apart, below
    )
    return [
        line1,
        _verdict_line(summary, look, style),
        _diff_line(summary, inner, now, style),
        _last_line(summary, style),
    ]


def _verdict_line(summary: RunSummary, look: Style, style: Styler) -> Text:
    """The last verdict, and why; for a merged run, how much of it review covered instead
    of why (what nobody read, in view: in the status's colour when anything was unread)."""
    muted = style("card-grid--muted")
    verdict = summary.verdict
    reason = ""
    if verdict is None:
        mark, name = "no verdict yet", "muted"
    else:
        mark, name = (
            ("? unknown", "unknown")
            if verdict.unknown
            else ("⚑ flagged", "fail")
            if verdict.flags
            else ("✔ done", "pass")
            if verdict.done
            else ("✘ not done", "fail")
        )
        reason = f"  {verdict.reasons[0]}" if verdict.reasons else ""
        if verdict.flags:  # where to look, rather than how many
            reason = f"  {verdict.flags[0]}"
    reason_look = muted
    review = summary.run.review
    if review is not None:
        reason, reason_look = f"  {reviewed_line(review)}", look if review.unread_lines else muted
    return Text.assemble((mark, style(f"card-grid--{name}")), (reason, reason_look))


def _diff_line(summary: RunSummary, inner: int, now: float, style: Styler) -> Text:
    """The size of the change, what it cost (whole, at the right), and how long it has
    waited for the human."""
    muted = style("card-grid--muted")
    run = summary.run
    diff = run.diff
    if diff.files or diff.added or diff.removed:
        line = Text.assemble(
            (f"+{diff.added}", style("card-grid--add")),
            " ",
            (f"−{diff.removed}", style("card-grid--remove")),
        )
        files = Text(f"  in {counted(diff.files, 'file')}", muted)
    else:  # not "+0 −0 in 0 files"
        line, files = Text("no change yet" if run.status.is_active else "no change", muted), Text()
    spent = format.cost(run.input_tokens, run.output_tokens, run.cost_usd)
    if not spent:
        line.append_text(files)
    else:  # the count of files gives way first
        if line.cell_len + files.cell_len + 2 + len(spent) <= inner:
            line.append_text(files)
        line.append(" " * max(2, inner - line.cell_len - len(spent)))
        line.append(spent, muted)
    waiting = summary.waiting(now)
    if waiting >= format.WAIT_SHOWN and line.cell_len + 16 <= inner:
        line.append(f"  waited {format.duration(waiting)}", muted)
    return line


def _last_line(summary: RunSummary, style: Styler) -> Text:
    """What the agent last said, or, once it ended badly, why; nothing to open once gone."""
    run = summary.run
    muted = style("card-grid--muted")
    why = status_reason(run.status, run.error)
    if not run.status.has_workspace:
        return Text(WORKSPACE_GONE, muted)
    if why and not run.status.is_active:
        return Text(why, style("card-grid--fail"))
    return Text(summary.last_line or " ", muted)
