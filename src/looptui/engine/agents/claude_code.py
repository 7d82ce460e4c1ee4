"""The `claude-code` agent: Claude Code's CLI in headless mode, read through its JSON stream.

It runs `claude -p --output-format stream-json --verbose` in the worktree with the prompt on
stdin, and turns each line into looptui's events: text, tool calls and their results, usage
and cost, errors, and the end of the turn. Unknown lines and fields are skipped; a line that
is not JSON is shown as output. The result line's `is_error` is honoured even when its
subtype says "success". The session id is the resume token, announced (`Session`) as soon
as the stream shows it: the next iteration, or the run after a restart (even one in the
middle of the first turn), continues the conversation with `--resume=<id>`.

A turn that a usage limit ended, when the stream says when the limit resets (a rejected
`rate_limit_event`, or a result of "Claude AI usage limit reached|<epoch>"), raises
`UsageLimited`: the run is deferred to the reset and resumed in the same session.

The environment passes through, so `ANTHROPIC_BASE_URL` gateways and `ANTHROPIC_API_KEY` or
`ANTHROPIC_AUTH_TOKEN` work as they do for `claude` itself.

Permissions when running as root: Claude Code refuses `--dangerously-skip-permissions`
(permission mode `bypassPermissions`) under root or sudo, which is how many containers run.
It has an undocumented escape, `IS_SANDBOX=1`; looptui never sets it. Use
`permission_mode = "acceptEdits"` with `allowed_tools` naming what the agent may run (for
example `["Read", "Edit", "Write", "Bash(python -m pytest *)"]`), or run looptui as an
ordinary user inside the container when bypass is wanted.

The loop's skills are placed in the worktree's `.claude/skills/` for the turn
(json_cli.with_skills).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looptui.engine.agents.base import (
    NOTE_STREAM,
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    OutputLine,
    Session,
    SystemPrompt,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from looptui.engine.agents.json_cli import stream_events, with_skills
from looptui.engine.agents.limits import claude_limit_text, epoch
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable, UsageLimited
from looptui.engine.process import WORKTREE_VARIABLE, Exit, find_executable

INSTALL_HINT = "npm install -g @anthropic-ai/claude-code"
WRITING_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")  # denied to a read-only turn


@dataclass
class StreamState:
    """What the lines of one turn have said so far."""

    session_id: str | None = None
    announced: set[str] = field(default_factory=set)  # session ids already yielded as Session
    tool_names: dict[str, str] = field(default_factory=dict)  # tool_use id → tool name
    finished: Finished | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    limit_resets_at: float | None = None  # a usage limit refused the turn until then
    rate_limited: bool = False  # an assistant line said `error: "rate_limit"`


class ClaudeCodeAgent:
    """Runs `claude -p` in the worktree, one session per run, resumed turn by turn."""

    def __init__(self, config: AgentConfig) -> None:
        self.name = config.name
        self.config = config
        self.binary = config.binary or "claude"

    def preflight(self, environ: Mapping[str, str], cwd: Path) -> None:
        if find_executable(self.binary, {**environ, **self.config.env}, cwd) is None:
            raise AgentUnavailable(
                f"agent {self.name!r}: Claude Code not found ({self.binary}); "
                f"install it with `{INSTALL_HINT}`"
            )
        mcp = self.config.mcp_config
        if mcp is not None and not (cwd / mcp).is_file():  # a relative path: from the root
            raise AgentUnavailable(f"agent {self.name!r}: mcp_config {mcp} does not exist")

    def argv(self, task: AgentTask) -> list[str]:
        """The command line of a turn; the prompt is not in it (it goes on stdin)."""
        config = self.config
        argv = [self.binary, "-p", "--output-format", "stream-json", "--verbose"]
        if config.model:
            argv += ["--model", config.model]
        if task.read_only:  # a reviewer reads, whatever the agent's own permissions say
            argv += _read_only_options(task, config.allowed_tools)
        else:
            if config.permission_mode:
                argv += ["--permission-mode", config.permission_mode]
            if config.allowed_tools:
                argv += ["--allowedTools", ",".join(config.allowed_tools)]
        if config.max_turns:
            argv += ["--max-turns", str(config.max_turns)]
        if task.system_prompt is not None:
            argv += ["--system-prompt", task.system_prompt]
        system = self.appended_system(task)
        if system:
            argv += ["--append-system-prompt", system]
        if config.mcp_config is not None:
            argv += ["--mcp-config", str(config.mcp_config)]
        if task.resume_token:
            argv.append(f"--resume={task.resume_token}")  # the = form: a value never a flag
        return argv

    def appended_system(self, task: AgentTask) -> str:
        """What goes after Claude Code's own system prompt (`--append-system-prompt`)."""
        parts = (self.config.append_system_prompt, task.system)
        return "\n\n".join(part for part in parts if part)

    def system_sent(self, task: AgentTask) -> SystemPrompt | None:
        """The system text of a turn, as the run stores it (see `SystemPrompt`)."""
        appended = self.appended_system(task)
        if task.system_prompt is not None:
            return SystemPrompt("\n\n".join(p for p in (task.system_prompt, appended) if p))
        return SystemPrompt(appended, appended=True) if appended else None

    def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        """One turn, with the task's skills placed in the worktree while it lasts."""
        return with_skills(task, "claude-code", self._turn)

    async def _turn(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        system = self.system_sent(task)
        if system is not None:  # stored with the prompt, before the process is started
            yield system
        environ = {
            **task.environ,
            **self.config.env,
            WORKTREE_VARIABLE: str(task.worktree),
        }
        environ.pop("CLAUDECODE", None)  # not a nested session of the user's own Claude Code
        environ.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        state = StreamState(session_id=task.resume_token)
        exit_status = Exit()
        events = stream_events(
            self.argv(task),
            task,
            environ,
            lambda event: parse_event(event, state),
            exit_status,
            state.stderr,
        )
        async for event in events:
            yield event
            if isinstance(event, Finished):  # it could not start
                return
        code = exit_status.code
        finished = state.finished
        if state.limit_resets_at is not None and (finished is None or not finished.ok):
            message = "claude: usage limit reached"
            if finished is None:  # no result line said it
                yield AgentError(message)
            raise UsageLimited(message, state.limit_resets_at)
        if finished is None:
            last = state.stderr[-1] if state.stderr else "no result line"
            message = f"{self.binary} ended without a result (exit status {code}): {last}"
            yield AgentError(message)
            yield Finished(ok=False, message=message, exit_code=code, resume_token=state.session_id)
            return
        if code != 0 and finished.ok:
            yield AgentError(f"{self.binary} exited with status {code}")
        yield Finished(
            ok=finished.ok and code == 0,
            message=finished.message,
            exit_code=code,
            resume_token=finished.resume_token or state.session_id,
        )


def _read_only_options(task: AgentTask, allowed_tools: tuple[str, ...]) -> list[str]:
    """Permissions of a turn that must not write: the writing tools removed (deny rules win
    over any allow rule), Bash too unless commands are allowed, and `dontAsk`, which denies
    whatever was not allowed beforehand instead of waiting for an answer no one gives."""
    commands = ["Bash"] if task.allow_commands else []
    allowed = ["Read", "Grep", "Glob", *commands, *allowed_tools]
    denied = [*WRITING_TOOLS, *([] if task.allow_commands else ["Bash"])]
    return [
        "--permission-mode",
        "dontAsk",
        "--allowedTools",
        ",".join(dict.fromkeys(allowed)),
        "--disallowedTools",
        ",".join(denied),
    ]


def parse_event(data: dict[str, Any], state: StreamState) -> Iterator[AgentEvent]:
    """The events of one stream-json line; unknown types and fields are skipped."""
    session = data.get("session_id")
    if isinstance(session, str) and session:
        state.session_id = session
        if session not in state.announced:  # stored at once: a kill mid-turn can resume it
            state.announced.add(session)
            yield Session(session)
    kind, subtype = data.get("type"), data.get("subtype")
    if kind == "assistant":
        yield from _assistant(data, state)
    elif kind == "user":
        yield from _tool_results(data, state)
    elif kind == "result":
        yield from _result(data, state)
    elif kind == "system" and subtype == "api_retry":
        attempt, limit = data.get("attempt"), data.get("max_retries")
        status = data.get("error_status") or data.get("error") or "error"
        yield OutputLine(f"[claude: API {status}, retry {attempt} of {limit}]", NOTE_STREAM)
    elif kind == "rate_limit_event":
        info = data.get("rate_limit_info")
        info = info if isinstance(info, dict) else {}
        resets = epoch(info.get("resetsAt"))
        if info.get("status") == "rejected" and resets is not None:
            state.limit_resets_at = resets
            yield OutputLine(f"[claude: usage limit reached, resets at {resets:.0f}]", NOTE_STREAM)
    elif kind == "system" and subtype == "init":
        model = data.get("model")
        yield OutputLine(f"[claude: session {state.session_id}, model {model}]", NOTE_STREAM)


def _assistant(data: dict[str, Any], state: StreamState) -> Iterator[AgentEvent]:
    message = data.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            if block["text"].strip():
                yield Text(block["text"])
        elif block.get("type") == "tool_use":
            name = str(block.get("name") or "tool")
            state.tool_names[str(block.get("id"))] = name
            tool_input = block.get("input")
            yield ToolCall(name, tool_input if isinstance(tool_input, dict) else {})
    error = data.get("error")
    if isinstance(error, str) and error:
        state.rate_limited = state.rate_limited or error == "rate_limit"
        yield AgentError(f"claude: {error}")
    if state.rate_limited:  # the limit's message is the assistant's text: it may say the reset
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                state.limit_resets_at = claude_limit_text(block["text"]) or state.limit_resets_at


def _tool_results(data: dict[str, Any], state: StreamState) -> Iterator[AgentEvent]:
    if data.get("isReplay"):
        return
    message = data.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_result":
            name = state.tool_names.get(str(block.get("tool_use_id")), "tool")
            yield ToolResult(name, _text_of(block.get("content")), bool(block.get("is_error")))


def _result(data: dict[str, Any], state: StreamState) -> Iterator[AgentEvent]:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    # Cached input is input too: what was read from and written to the cache counts.
    tokens_in = sum(
        _int(usage.get(key))
        for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
    cost = data.get("total_cost_usd")
    yield Usage(
        tokens_in,
        _int(usage.get("output_tokens")),
        float(cost) if isinstance(cost, int | float) else 0.0,
    )
    failed = bool(data.get("is_error")) or data.get("subtype") != "success"
    if failed:  # "Claude AI usage limit reached|<epoch>": the limit and its reset
        resets = claude_limit_text(str(data.get("result") or ""))
        state.limit_resets_at = resets or state.limit_resets_at
    errors = data.get("errors")
    if failed:
        reason = "; ".join(map(str, errors)) if isinstance(errors, list) and errors else ""
        reason = reason or str(data.get("result") or data.get("subtype") or "error")
        yield AgentError(f"claude: {reason}")
        message = reason
    else:
        message = str(data.get("result") or "")
    state.finished = Finished(ok=not failed, message=message, resume_token=state.session_id)


def _text_of(content: object) -> str:
    """A tool result's content as text: a string, or a list of blocks (an image is named)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif isinstance(block.get("type"), str):
                parts.append(f"[{block['type']}]")
        return "\n".join(parts)
    return "" if content is None else str(content)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
