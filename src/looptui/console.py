"""How the headless CLI shows runs and events on a terminal (Rich), and as JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.style import StyleType
from rich.text import Text

from looptui.engine.agents.base import NOTE_STREAM
from looptui.engine.models import (
    WORKSPACE_GONE,
    Iteration,
    Run,
    RunStatus,
    Verdict,
    check_outcome,
    status_reason,
)
from looptui.engine.store.search import SearchHit
from looptui.protocol.events import (
    AgentSaid,
    CheckRan,
    Committed,
    ErrorReported,
    Event,
    GateRan,
    HookRan,
    IterationMarked,
    NoteAdded,
    OutputPrinted,
    StatusChanged,
    ToolAnswered,
    ToolCalled,
    VerdictGiven,
    payload_fields,
    payload_from_fields,
)
from looptui.words import counted

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
    RunStatus.DEFERRED: "blue",
    RunStatus.MERGED: "green",
    RunStatus.DISCARDED: "dim",
}


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def run_to_json(
    run: Run, verdict: tuple[int, Verdict] | None = None, driven: bool = False
) -> dict[str, Any]:
    """`run` as JSON; `driven`: the repository's service is driving it now."""
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
        "retry_at": iso(run.retry_at),
        "driven": driven,
        "diff": {"files": run.diff.files, "added": run.diff.added, "removed": run.diff.removed},
        "usage": {
            "input_tokens": run.input_tokens,
            "output_tokens": run.output_tokens,
            "cost_usd": run.cost_usd,
        },
        # how much of a merged run review covered; None before a merge (or an older one)
        "review": None if run.review is None else dataclasses.asdict(run.review),
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


def runs_table(runs: Sequence[Run], driven: Mapping[str, int] | None = None) -> Group:
    """Every run as a block: a headline (id, loop, status, iterations, diff) and then, one per
    line and never cut short, its branch, base, worktree, times and error. Reads at 80
    columns; long paths run on rather than being truncated. `driven` maps the runs the
    service is driving now to its pid."""
    blocks: list[Text] = []
    for run in runs:
        block = Text.assemble(
            (run.id, "bold"),
            "  ",
            run.loop,
            "  ",
            (run.status_label, STATUS_STYLE[run.status]),
            f"  {run.iterations}/{counted(run.max_iterations, 'iteration')}",
            f"  +{run.diff.added} -{run.diff.removed} in {counted(run.diff.files, 'file')}"
            if run.diff.files or run.diff.added or run.diff.removed
            else "  no change",
        )
        gone = "" if run.status.has_workspace else " (deleted)"
        details = [
            ("branch", run.branch + gone),
            ("base", f"{run.base_branch} at {run.base_commit}"),
            ("worktree", run.worktree + (" (removed)" if gone else "")),
            ("started", _local_time(run.started_at) if run.started_at else "not yet"),
            ("finished", _local_time(run.finished_at) if run.finished_at else "not yet"),
        ]
        reason = status_reason(run.status, run.error)
        if reason:
            details.append(("error" if run.status is RunStatus.FAILED else "why", clean(reason)))
        if driven and run.id in driven:
            details.append(("driver", f"driven by the service (pid {driven[run.id]})"))
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


def prompt_heading(iteration: Iteration, what: str = "") -> str:
    """The line above an iteration's prompt: its number and when it started (local time)."""
    when = dt.datetime.fromtimestamp(iteration.started_at).strftime("%Y-%m-%d %H:%M:%S")
    return f"── iteration {iteration.number} · {when}{f' · {what}' if what else ''} ──"


def system_heading(iteration: Iteration) -> str:
    """What an iteration's system text is: the whole system prompt, or added to the agent's."""
    if iteration.system_appended:
        return "system prompt (added to the agent's own)"
    return "system prompt"


def prompts_text(iterations: Sequence[Iteration]) -> str:
    """Each iteration's prompt under its heading, exactly as stored (cleaned of terminal
    escapes only); an iteration's system text before it when it differs from the last one's.
    """
    blocks: list[str] = []
    system: str | None = None
    for iteration in iterations:
        if iteration.system_prompt is not None and iteration.system_prompt != system:
            blocks.append(prompt_heading(iteration, system_heading(iteration)) + "\n")
            blocks.append(_ended(clean(iteration.system_prompt)))
        system = iteration.system_prompt
        blocks.append(prompt_heading(iteration) + "\n")
        blocks.append(_ended(clean(iteration.prompt)))
    return "".join(blocks)


def _ended(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


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
    RunStatus.DEFERRED: "muted",
    RunStatus.MERGED: "pass",
    RunStatus.DISCARDED: "muted",
}
TOOL_RESULT_PREVIEW = 200
HOOK_COMMAND_PREVIEW = 60
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
    # what agents print is shown, never obeyed: control sequences are cleaned from every text
    payload = payload_from_fields(event.kind, _clean_value(payload_fields(event.payload)))
    muted = palette["muted"]
    head = Text(prefix, style=muted)
    indent = "\n" + prefix + "      "
    under = "\n" + prefix + "    "  # later lines of a text, under its first one
    match payload:
        case StatusChanged(status=status, error=error):
            line = head + Text(f"■ {status.value}", style=palette[STATUS_ROLE[status]])
            reason = status_reason(status, error)
            if reason is None and not status.has_workspace:
                reason = WORKSPACE_GONE
            if reason:
                line += Text(f": {_hanging(reason, under)}", style=muted)
            return line
        case IterationMarked(phase="started", max=last):
            return head + Text(f"▶ iteration {event.iteration}/{last or '?'}", palette["heading"])
        case OutputPrinted(line=text, stream=stream):
            style = {"stderr": palette["fail"], NOTE_STREAM: muted}.get(stream, "")
            return head + Text("  │ ", style=muted) + Text(text, style=style)
        case AgentSaid(text=text):
            return head + Text(f"  ✎ {_hanging(text, under)}", style=palette["text"])
        case ToolCalled(name=name, input=tool_input):
            if expanded and tool_input:
                body = json.dumps(tool_input, indent=2, ensure_ascii=False).replace("\n", indent)
                return head + Text(f"  ⚙ {name}{indent}{body}", style=palette["tool"])
            return head + Text(f"  ⚙ {name} {_compact(tool_input)}", style=palette["tool"])
        case ToolAnswered(output=output, is_error=is_error):
            style = palette["fail"] if is_error else muted
            if expanded:
                return head + Text("    → " + output.replace("\n", indent), style=style)
            first, _, rest = output.partition("\n")
            more = f"  (+{counted(rest.count(chr(10)) + 1, 'line')})" if rest else ""
            return head + Text(f"    → {first[:TOOL_RESULT_PREVIEW]}{more}", style=style)
        case ErrorReported(message=message):
            return head + Text(f"  ✗ {_hanging(message, under)}", style=palette["fail"])
        case Committed(sha=sha, files=files, added=added, removed=removed):
            diff = f"+{added} -{removed} in {counted(files, 'file')}"
            return head + Text(f"  ● commit {sha[:10]} ({diff})", style=muted)
        case CheckRan() as check:
            return _check_line(check, head, indent, full_checks, palette)
        case GateRan(commit=commit, passed=passed, duration=duration, ignored=ignored):
            line = head + Text(
                f"  ⛨ clean checkout of {commit[:12]}: "
                f"{'passed' if passed else 'FAILED'} in {duration:.1f}s",
                style=palette["pass" if passed else "fail"],
            )
            if ignored:
                line += Text(
                    f"{indent}the turn wrote files git ignores: {', '.join(ignored)}", muted
                )
            return line
        case VerdictGiven() as given:
            return _verdict_lines(given.verdict, head, indent, palette)
        case NoteAdded(note=note, text=text):
            return head + Text(f"  ✍ note ({note.value}): {_hanging(text, under)}", style=muted)
        case HookRan() as hook:
            return head + _hook_line(hook, palette)
    return None


def _hanging(text: str, under: str) -> str:
    """A text of several lines with its later lines starting at `under` (a newline and the
    indent of the first line's text), so that they read as one item in the log."""
    return text.rstrip().replace("\n", under) if "\n" in text else text


def _hook_line(hook: HookRan, palette: Mapping[str, StyleType]) -> Text:
    """A hook that ran, in one line: how it ended, and what it said on stderr if it failed
    (the first line when it refused, as the refusal quotes it; else the last)."""
    lines = [line.strip() for line in hook.stderr.splitlines() if line.strip()]
    if hook.blocked:
        outcome, role, said = "refused (exit 2)", "fail", lines[:1]
    elif hook.timed_out:
        outcome, role, said = f"timed out after {hook.duration:.1f}s", "warn", []
    elif hook.exit_code == 0:
        outcome, role, said = f"ok in {hook.duration:.1f}s", "muted", []
    else:
        outcome, role, said = f"failed (exit {hook.exit_code})", "warn", lines[-1:]
    command = " ".join(hook.command.split())  # a multi-line script on one line
    line = f"  ↪ hook {hook.hook} {_compact(command, HOOK_COMMAND_PREVIEW)}: {outcome}"
    if said:
        line += f": {_compact(said[0], TOOL_RESULT_PREVIEW)}"
    return Text(line, style=palette[role])


def _check_line(
    check: CheckRan, head: Text, indent: str, full: bool, palette: Mapping[str, StyleType]
) -> Text:
    outcome = check_outcome(check.exit_code, check.timed_out)
    line = head + Text(
        f"  {'✓' if check.passed else '✗'} check {check.name}: {outcome}",
        style=palette["pass" if check.passed else "fail"],
    )
    if check.tail and (full or not check.passed):
        for output_line in check.tail.splitlines():
            line += Text(indent + output_line, style=palette["muted"])
    return line


def _verdict_lines(
    verdict: Verdict, head: Text, indent: str, palette: Mapping[str, StyleType]
) -> Text:
    muted = palette["muted"]
    line = head + Text(
        f"  ⚖ verdict ({verdict.evaluator}): {verdict.outcome}",
        style=palette["pass" if verdict.done else "warn"],
    )
    for flag in verdict.flags:
        line += Text(f"{indent}⚑ flagged {flag}", style=palette["fail"])
    if verdict.flags:
        hint = "if changing the tests is the task, the loop needs allow_test_edits = true"
        line += Text(f"{indent}({hint})", style=muted)
    for reason in verdict.reasons if not verdict.done else ():
        if not _PASSED_CHECK.match(reason):  # what held is no reason for "not done"
            line += Text(f"{indent}why: {reason}", style=muted)
    for step in verdict.next_steps:
        line += Text(f"{indent}next: {step}", style=muted)
    return line


def _compact(value: Any, width: int = 120) -> str:
    text = str(value) if value else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def snippet_text(hit: SearchHit, mark: StyleType = "bold reverse") -> Text:
    """A search hit's snippet with its matched words styled `mark`; each piece is cleaned of
    terminal control on its own, so that the marks stay on the words they enclose."""
    text = Text()
    at = 0
    for start, end in hit.marks:
        text.append(clean(hit.snippet[at:start]))
        text.append(clean(hit.snippet[start:end]), mark)
        at = end
    text.append(clean(hit.snippet[at:]))
    return text


def hit_to_json(hit: SearchHit) -> dict[str, Any]:
    """A search hit as `looptui search --json` prints it."""
    return {
        "run": hit.run_id,
        "loop": hit.loop,
        "iteration": hit.iteration,
        "time": iso(hit.ts),
        "source": hit.source,
        "kind": hit.kind,
        "id": hit.id,
        "snippet": hit.snippet,  # JSON escapes control characters; the marks stay true
        "marks": [list(span) for span in hit.marks],
        "rank": hit.rank,
    }
