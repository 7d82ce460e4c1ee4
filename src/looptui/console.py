"""How the headless CLI shows runs and events on a terminal (Rich), and as JSON."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.style import StyleType
from rich.text import Text

from looptui.engine.agents.base import NOTE_STREAM
from looptui.engine.events import Event, EventKind
from looptui.engine.models import Run, RunStatus, Verdict, flags_from_data

STATUS_STYLE = {
    RunStatus.QUEUED: "dim",
    RunStatus.RUNNING: "cyan",
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.UNCHANGED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.STALLED: "yellow",
    RunStatus.PAUSED: "yellow",
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
            "outcome": verdict[1].outcome,
            "evaluator": verdict[1].evaluator,
            "confidence": verdict[1].confidence,
            "reasons": list(verdict[1].reasons),
            "next_steps": list(verdict[1].next_steps),
            "flags": [flag.to_data() for flag in verdict[1].flags],
        },
    }


def runs_table(runs: Sequence[Run]) -> Group:
    """Every run as a block: a headline (id, loop, status, iterations, diff) and then, one per
    line and never cut short, its branch, base, worktree, times and error. Reads at 80
    columns; long paths run on rather than being truncated."""
    blocks: list[Text] = []
    for run in runs:
        block = Text.assemble(
            (run.id, "bold"),
            "  ",
            run.loop,
            "  ",
            (run.status.value, STATUS_STYLE[run.status]),
            f"  {run.iterations}/{run.max_iterations} iterations",
            f"  +{run.diff.added} -{run.diff.removed} in {run.diff.files} files",
        )
        details = [
            ("branch", run.branch),
            ("base", f"{run.base_branch} at {run.base_commit}"),
            ("worktree", run.worktree),
            ("started", _local_time(run.started_at) if run.started_at else "not yet"),
            ("finished", _local_time(run.finished_at) if run.finished_at else "not yet"),
        ]
        if run.error:
            details.append(("error", clean(run.error)))
        for label, value in details:
            block.append(f"\n  {label:<9} ", style="dim")
            block.append(value)
        blocks.append(block)
    spaced: list[Text] = []
    for block in blocks:
        spaced += [Text(), block] if spaced else [block]
    return Group(*spaced)


def _local_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


# Terminal control: escape sequences (CSI, OSC, DCS and the rest) and control characters
# other than tab and newline. Agents' output may hold them; only Rich may drive the terminal.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def clean(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tab and newline
    stay), so that what an agent printed cannot move the cursor, retitle or clear a
    terminal."""
    return _CONTROL.sub("", text)


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {key: _clean_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_value(item) for item in value]
    return value


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
    RunStatus.UNCHANGED: "pass",
    RunStatus.FAILED: "fail",
    RunStatus.STALLED: "warn",
    RunStatus.PAUSED: "warn",
    RunStatus.CANCELLED: "warn",
    RunStatus.INTERRUPTED: "warn",
    RunStatus.MERGED: "pass",
    RunStatus.DISCARDED: "muted",
}
TOOL_RESULT_PREVIEW = 200
_PASSED_CHECK = re.compile(r"^check .+ passed$")


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
    data: Mapping[str, Any] = _clean_value(event.data)
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
    if kind is EventKind.GATE:
        passed = bool(data.get("passed"))
        line = head + Text(
            f"  ⛨ clean checkout of {str(data.get('commit', ''))[:12]}: "
            f"{'passed' if passed else 'FAILED'} in {float(data.get('duration', 0)):.1f}s",
            style=palette["pass" if passed else "fail"],
        )
        ignored = [str(name) for name in data.get("ignored", [])]
        if ignored:
            line += Text(f"{indent}the turn wrote files git ignores: {', '.join(ignored)}", muted)
        return line
    if kind is EventKind.VERDICT:
        done, unknown = bool(data.get("done")), bool(data.get("unknown"))
        flags = flags_from_data(data.get("flags"))
        outcome = "unknown" if unknown else "flagged" if flags else "done" if done else "not done"
        line = head + Text(
            f"  ⚖ verdict ({data.get('evaluator')}): {outcome}",
            style=palette["pass" if done and not unknown else "warn"],
        )
        for flag in flags:
            line += Text(f"{indent}⚑ flagged {flag}", style=palette["fail"])
        if flags:
            hint = "if changing the tests is the task, the loop needs allow_test_edits = true"
            line += Text(f"{indent}({hint})", style=muted)
        for reason in data.get("reasons", []) if not done else []:
            if not _PASSED_CHECK.match(str(reason)):  # what held is no reason for "not done"
                line += Text(f"{indent}why: {reason}", style=muted)
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
