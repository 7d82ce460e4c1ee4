"""How the headless CLI shows runs and events on a terminal (Rich), and as JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from looptui.engine.events import Event, EventKind
from looptui.engine.models import Run, RunStatus, Verdict

STATUS_STYLE = {
    RunStatus.QUEUED: "dim",
    RunStatus.RUNNING: "cyan",
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.FAILED: "bold red",
    RunStatus.STALLED: "yellow",
    RunStatus.CANCELLED: "magenta",
    RunStatus.INTERRUPTED: "magenta",
    RunStatus.MERGED: "green",
    RunStatus.DISCARDED: "dim",
}


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def run_to_json(run: Run, verdict: tuple[int, Verdict] | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "loop": run.loop,
        "agent": run.agent,
        "status": run.status.value,
        "iterations": run.iterations,
        "max_iterations": run.max_iterations,
        "branch": run.branch,
        "worktree": run.worktree,
        "base_branch": run.base_branch,
        "base_commit": run.base_commit,
        "head_commit": run.head_commit,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "error": run.error,
        "diff": {"files": run.diff.files, "added": run.diff.added, "removed": run.diff.removed},
        "usage": {
            "input_tokens": run.input_tokens,
            "output_tokens": run.output_tokens,
            "cost_usd": run.cost_usd,
        },
        "last_verdict": None
        if verdict is None
        else {
            "iteration": verdict[0],
            "done": verdict[1].done,
            "evaluator": verdict[1].evaluator,
            "confidence": verdict[1].confidence,
            "reasons": list(verdict[1].reasons),
            "next_steps": list(verdict[1].next_steps),
        },
    }


def runs_table(runs: Sequence[Run]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "loop", "status", "iter", "diff", "branch", "started"):
        table.add_column(column, no_wrap=column != "branch")
    for run in runs:
        started = run.started_at or run.created_at
        table.add_row(
            run.id,
            run.loop,
            Text(run.status.value, style=STATUS_STYLE[run.status]),
            f"{run.iterations}/{run.max_iterations}",
            f"+{run.diff.added} -{run.diff.removed} ({run.diff.files})",
            run.branch,
            dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M"),
        )
    return table


def render_event(event: Event, prefix: str = "", full_checks: bool = False) -> Text | None:
    """One event as a line (or a few) of terminal text; None for events not worth a line."""
    data = event.data
    head = Text(prefix, style="dim")
    kind = event.kind
    if kind is EventKind.STATUS:
        status = RunStatus(data["status"])
        line = head + Text(f"■ {status.value}", style=STATUS_STYLE[status])
        if data.get("error"):
            line += Text(f": {data['error']}", style="dim")
        return line
    if kind is EventKind.ITERATION:
        if data.get("phase") == "started":
            return head + Text(f"▶ iteration {event.iteration}/{data.get('max', '?')}", "bold")
        return None
    if kind is EventKind.OUTPUT:
        style = "red" if data.get("stream") == "stderr" else ""
        return head + Text("  │ ", style="dim") + Text(str(data.get("line", "")), style=style)
    if kind is EventKind.TEXT:
        return head + Text(f"  ✎ {data.get('text', '')}", style="italic")
    if kind is EventKind.TOOL_CALL:
        return head + Text(f"  ⚙ {data.get('name')} {_compact(data.get('input'))}", style="blue")
    if kind is EventKind.TOOL_RESULT:
        style = "red" if data.get("is_error") else "dim"
        return head + Text(f"    → {str(data.get('output', ''))[:200]}", style=style)
    if kind is EventKind.ERROR:
        return head + Text(f"  ✗ {data.get('message')}", style="red")
    if kind is EventKind.COMMIT:
        sha = str(data.get("sha", ""))[:10]
        diff = f"+{data.get('added')} -{data.get('removed')} in {data.get('files')} files"
        return head + Text(f"  ● commit {sha} ({diff})", style="dim")
    if kind is EventKind.CHECK:
        passed = bool(data.get("passed"))
        outcome = (
            "passed"
            if passed
            else (
                "timed out" if data.get("timed_out") else f"failed (exit {data.get('exit_code')})"
            )
        )
        line = head + Text(
            f"  {'✓' if passed else '✗'} check {data.get('name')}: {outcome}",
            style="green" if passed else "red",
        )
        output = str(data.get("tail", ""))
        if output and (full_checks or not passed):
            for output_line in output.splitlines():
                line += Text("\n" + prefix + "      " + output_line, style="dim")
        return line
    if kind is EventKind.VERDICT:
        done = bool(data.get("done"))
        line = head + Text(
            f"  ⚖ verdict ({data.get('evaluator')}): {'done' if done else 'not done'}",
            style="bold green" if done else "yellow",
        )
        for step in data.get("next_steps", []):
            line += Text("\n" + prefix + f"      next: {step}", style="dim")
        return line
    if kind is EventKind.NOTE:
        return head + Text(f"  ✍ note ({data.get('kind')}): {data.get('text')}", style="dim")
    return None


def _compact(value: Any) -> str:
    text = str(value) if value else ""
    return text if len(text) <= 120 else text[:119] + "…"


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)
