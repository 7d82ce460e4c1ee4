"""How the headless CLI shows runs and events on a terminal (Rich), and as JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from looptui.engine.agents.base import NOTE_STREAM
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


# Semantic roles of the event renderer; the CLI maps them to terminal colours, the TUI to its
# theme's variables.
CLI_PALETTE: dict[str, StyleType] = {
    "muted": "dim",
    "active": "cyan",
    "pass": "green",
    "fail": "red",
    "warn": "yellow",
    "tool": "blue",
    "text": "italic",
    "heading": "bold",
}
STATUS_ROLE = {
    RunStatus.QUEUED: "muted",
    RunStatus.RUNNING: "active",
    RunStatus.SUCCEEDED: "pass",
    RunStatus.FAILED: "fail",
    RunStatus.STALLED: "warn",
    RunStatus.CANCELLED: "warn",
    RunStatus.INTERRUPTED: "warn",
    RunStatus.MERGED: "pass",
    RunStatus.DISCARDED: "muted",
}
TOOL_RESULT_PREVIEW = 200


def render_event(
    event: Event,
    prefix: str = "",
    full_checks: bool = False,
    palette: Mapping[str, StyleType] = CLI_PALETTE,
    expanded: bool = False,
) -> Text | None:
    """One event as a line (or a few) of terminal text; None for events not worth a line.

    `expanded` shows tool calls' whole input and results instead of a one-line summary.
    """
    data = event.data
    muted = palette["muted"]
    head = Text(prefix, style=muted)
    indent = "\n" + prefix + "      "
    kind = event.kind
    if kind is EventKind.STATUS:
        status = RunStatus(data["status"])
        line = head + Text(f"■ {status.value}", style=palette[STATUS_ROLE[status]])
        if data.get("error"):
            line += Text(f": {data['error']}", style=muted)
        return line
    if kind is EventKind.ITERATION:
        if data.get("phase") == "started":
            return head + Text(
                f"▶ iteration {event.iteration}/{data.get('max', '?')}", palette["heading"]
            )
        return None
    if kind is EventKind.OUTPUT:
        stream = data.get("stream")
        style = palette["fail"] if stream == "stderr" else muted if stream == NOTE_STREAM else ""
        return head + Text("  │ ", style=muted) + Text(str(data.get("line", "")), style=style)
    if kind is EventKind.TEXT:
        return head + Text(f"  ✎ {data.get('text', '')}", style=palette["text"])
    if kind is EventKind.TOOL_CALL:
        tool_input = data.get("input")
        if expanded and tool_input:
            body = json.dumps(tool_input, indent=2, ensure_ascii=False).replace("\n", indent)
            return head + Text(f"  ⚙ {data.get('name')}{indent}{body}", style=palette["tool"])
        return head + Text(f"  ⚙ {data.get('name')} {_compact(tool_input)}", style=palette["tool"])
    if kind is EventKind.TOOL_RESULT:
        style = palette["fail"] if data.get("is_error") else muted
        output = str(data.get("output", ""))
        if expanded:
            return head + Text("    → " + output.replace("\n", indent), style=style)
        first, _, rest = output.partition("\n")
        more = f"  (+{rest.count(chr(10)) + 1} lines)" if rest else ""
        return head + Text(f"    → {first[:TOOL_RESULT_PREVIEW]}{more}", style=style)
    if kind is EventKind.ERROR:
        return head + Text(f"  ✗ {data.get('message')}", style=palette["fail"])
    if kind is EventKind.COMMIT:
        sha = str(data.get("sha", ""))[:10]
        diff = f"+{data.get('added')} -{data.get('removed')} in {data.get('files')} files"
        return head + Text(f"  ● commit {sha} ({diff})", style=muted)
    if kind is EventKind.CHECK:
        passed = bool(data.get("passed"))
        if passed:
            outcome = "passed"
        elif data.get("timed_out"):
            outcome = "timed out"
        else:
            outcome = f"failed (exit {data.get('exit_code')})"
        line = head + Text(
            f"  {'✓' if passed else '✗'} check {data.get('name')}: {outcome}",
            style=palette["pass" if passed else "fail"],
        )
        output = str(data.get("tail", ""))
        if output and (full_checks or not passed):
            for output_line in output.splitlines():
                line += Text(indent + output_line, style=muted)
        return line
    if kind is EventKind.VERDICT:
        done = bool(data.get("done"))
        line = head + Text(
            f"  ⚖ verdict ({data.get('evaluator')}): {'done' if done else 'not done'}",
            style=palette["pass" if done else "warn"],
        )
        for step in data.get("next_steps", []):
            line += Text(f"{indent}next: {step}", style=muted)
        return line
    if kind is EventKind.NOTE:
        return head + Text(f"  ✍ note ({data.get('kind')}): {data.get('text')}", style=muted)
    return None


def _compact(value: Any) -> str:
    text = str(value) if value else ""
    return text if len(text) <= 120 else text[:119] + "…"


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)
