"""The `codex` agent: the Codex CLI's `codex exec --json`, read through its JSONL events.

The prompt goes on stdin (`-`), which is then closed; the worktree is the working root. The
thread id of `thread.started` is the resume token, announced (`Session`) at once: the next
iteration, or the run after a restart (even one in the middle of a turn), goes on with
`codex exec resume <thread id>`. With `base_url`, a custom model provider is configured by
`-c` overrides (Responses API, the key read by Codex from the variable `api_key_env`
names; the key itself never appears in the command line). The
task's system text goes in as `developer_instructions`, a developer message in Codex 0.169.

`codex exec resume` accepts neither `-s` nor `-C` (Codex 0.169), so the sandbox is set with
the equivalent `-c sandbox_mode=...` on both forms, and a resumed thread works in the
process's working directory, which is the worktree.

A turn that Codex's usage limit ended ("You've hit your usage limit… try again in 2 hours
5 minutes", or "… at 3:28 PM", in an `error` or `turn.failed` event) raises `UsageLimited`
when the message names the time: the run is deferred to it and resumed in the same thread.

The loop's skills are placed in the worktree's `.agents/skills/` for the turn, where Codex 0.169
discovers project skills (json_cli.with_skills).
"""

from __future__ import annotations

import json
import re
import time
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
from looptui.engine.agents.limits import codex_limit_text
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable, UsageLimited
from looptui.engine.process import WORKTREE_VARIABLE, Exit, find_executable

INSTALL_HINT = "npm install -g @openai/codex"
PROVIDER = "looptui"
DEFAULT_KEY_VARIABLE = "OPENAI_API_KEY"
# A thread id as Codex prints it (a UUID); anything else, such as a value starting with "-",
# could be taken for an option, so it is never passed on.
_THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass
class CodexState:
    """What the events of one turn have said so far."""

    thread_id: str | None = None
    announced: set[str] = field(default_factory=set)  # thread ids already yielded as Session
    completed: bool = False
    failure: str | None = None
    last_message: str = ""
    called: set[str] = field(default_factory=set)  # items whose ToolCall was already yielded
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    limit: tuple[str, float] | None = None  # a usage limit's message and its reset


class CodexAgent:
    """Runs `codex exec --json` in the worktree, one thread per run, resumed turn by turn."""

    def __init__(self, config: AgentConfig) -> None:
        self.name = config.name
        self.config = config
        self.binary = config.binary or "codex"

    def preflight(self, environ: Mapping[str, str], cwd: Path) -> None:
        if find_executable(self.binary, {**environ, **self.config.env}, cwd) is None:
            raise AgentUnavailable(
                f"agent {self.name!r}: Codex not found ({self.binary}); "
                f"install it with `{INSTALL_HINT}`"
            )

    def argv(self, task: AgentTask) -> list[str]:
        """The command line of a turn: a new thread, or `resume` of the task's thread."""
        config = self.config
        # a read-only turn (the evaluator's) gets the read-only sandbox whatever the config says
        sandbox = "read-only" if task.read_only else config.sandbox
        options = ["--json", "--skip-git-repo-check", *_override("sandbox_mode", sandbox)]
        if config.model:
            options += ["-m", config.model]
        instructions = _instructions(task)
        if instructions:
            options += _override("developer_instructions", instructions)
        if config.base_url:
            provider = f"model_providers.{PROVIDER}"
            options += _override("model_provider", PROVIDER)
            options += _override(f"{provider}.name", PROVIDER)
            options += _override(f"{provider}.base_url", config.base_url)
            options += _override(f"{provider}.wire_api", "responses")
            options += _override(f"{provider}.env_key", config.api_key_env or DEFAULT_KEY_VARIABLE)
        thread = _thread_id(task.resume_token)
        if thread is not None:
            return [self.binary, "exec", "resume", *options, thread, "-"]
        return [self.binary, "exec", *options, "-C", str(task.worktree), "-"]

    def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        """One turn, with the task's skills placed in the worktree while it lasts."""
        return with_skills(task, "codex", self._turn)

    async def _turn(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        instructions = _instructions(task)
        if instructions:  # stored with the prompt, before the process is started
            yield SystemPrompt(instructions, appended=True)
        environ = {**task.environ, **self.config.env, WORKTREE_VARIABLE: str(task.worktree)}
        thread = _thread_id(task.resume_token)
        if task.resume_token and thread is None:
            yield OutputLine("[looptui: the resume token is not a Codex thread id]", NOTE_STREAM)
        state = CodexState(thread_id=thread)
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
        if state.limit is not None and not (state.completed and state.failure is None):
            if state.failure is None:  # only an `error` notice said it
                yield AgentError(state.limit[0])
            raise UsageLimited(*state.limit)
        if state.failure is not None:  # already reported by its AgentError
            message = state.failure
        elif not state.completed:
            last = state.stderr[-1] if state.stderr else "no turn.completed event"
            message = f"{self.binary} ended before its turn did (exit status {code}): {last}"
            yield AgentError(message)
        elif code != 0:
            message = f"{self.binary} exited with status {code}"
            yield AgentError(message)
        else:
            message = state.last_message
        ok = state.completed and state.failure is None and code == 0
        yield Finished(ok=ok, message=message, exit_code=code, resume_token=state.thread_id)


def _instructions(task: AgentTask) -> str:
    """The turn's developer instructions: added to Codex's own, never replacing them."""
    return "\n\n".join(part for part in (task.system_prompt, task.system) if part)


def parse_event(data: dict[str, Any], state: CodexState) -> Iterator[AgentEvent]:
    """The events of one `--json` line; unknown types and fields are skipped."""
    kind = data.get("type")
    if kind == "thread.started":
        thread = _thread_id(data.get("thread_id"))
        if thread is not None:
            state.thread_id = thread
            if thread not in state.announced:  # stored at once: a kill mid-turn can resume it
                state.announced.add(thread)
                yield Session(thread)
    elif kind == "turn.completed":
        state.completed = True
        usage = _dict(data.get("usage"))
        yield Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")))
    elif kind == "turn.failed":
        message = _dict(data.get("error")).get("message")
        state.failure = f"codex: {message or 'the turn failed'}"
        _note_limit(state, message)
        yield AgentError(state.failure)
    elif kind == "error":  # also Codex's "Reconnecting... 2/5" notices: not the end
        _note_limit(state, data.get("message"))
        yield OutputLine(f"[codex: {data.get('message', 'error')}]", NOTE_STREAM)
    elif kind in ("item.started", "item.completed") and isinstance(data.get("item"), dict):
        yield from _item(kind == "item.completed", data["item"], state)


def _note_limit(state: CodexState, message: object) -> None:
    """Remember a usage-limit message that says when the limit resets."""
    if isinstance(message, str):
        resets = codex_limit_text(message, time.time())
        if resets is not None:
            state.limit = (f"codex: {message.strip().splitlines()[0]}", resets)


def _item(completed: bool, item: dict[str, Any], state: CodexState) -> Iterator[AgentEvent]:
    kind = item.get("type")
    if kind == "agent_message":
        if completed:
            text = str(item.get("text") or "")
            state.last_message = text
            if text.strip():
                yield Text(text)
        return
    if kind == "error":
        if completed:
            yield OutputLine(f"[codex: {item.get('message', 'error')}]", NOTE_STREAM)
        return
    tool = _tool(item)
    if tool is None:
        return
    name, arguments = tool
    # A tool's item may come only completed (a declined command, a file change): its call is
    # still shown once, before its result.
    key = item.get("id")
    if not isinstance(key, str) or key not in state.called:
        if isinstance(key, str):
            state.called.add(key)
        yield ToolCall(name, arguments)
    if completed:
        output, failed = _tool_result(item)
        yield ToolResult(name, output, failed)


def _tool(item: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The name and input of a tool item, or None for other items."""
    kind = item.get("type")
    if kind == "command_execution":
        return "shell", {"command": str(item.get("command") or "")}
    if kind == "file_change":
        return "file_change", {"paths": [path for path, _ in _changes(item)]}
    if kind == "mcp_tool_call":
        arguments = item.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {"arguments": arguments}
        return f"mcp:{item.get('server')}/{item.get('tool')}", arguments
    return None


def _tool_result(item: dict[str, Any]) -> tuple[str, bool]:
    """The output of a completed tool item, and whether it failed."""
    kind = item.get("type")
    failed = item.get("status") in ("failed", "declined")
    if kind == "command_execution":
        code = item.get("exit_code")
        return str(item.get("aggregated_output") or ""), failed or code not in (0, None)
    if kind == "file_change":
        return "\n".join(f"{change} {path}" for path, change in _changes(item)), failed
    error = item.get("error")
    if error:
        message = _dict(error).get("message") if isinstance(error, dict) else error
        return str(message or error), True
    return _mcp_output(item.get("result")), failed


def _changes(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, kind) of each change of a file_change item."""
    changes = item.get("changes")
    return [
        (str(change.get("path")), str(change.get("kind") or "update"))
        for change in (changes if isinstance(changes, list) else [])
        if isinstance(change, dict) and change.get("path")
    ]


def _mcp_output(result: object) -> str:
    """The text blocks of an MCP result, else the result as JSON."""
    if result is None:
        return ""
    content = _dict(result).get("content")
    if isinstance(content, list):
        texts = [
            block["text"]
            for block in content
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        ]
        if texts:
            return "\n".join(texts)
    return json.dumps(result)


def _override(key: str, value: str) -> list[str]:
    """A `-c key=value` option whose value is a TOML string."""
    return ["-c", f"{key}={toml_string(value)}"]


def toml_string(value: str) -> str:
    """`value` as a TOML basic string: quotes, backslashes and control characters escaped.

    (A JSON string is not always one: JSON writes characters beyond the BMP as surrogate
    pairs, which TOML rejects.)
    """
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char < " " or char == "\x7f":
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _thread_id(value: object) -> str | None:
    return value if isinstance(value, str) and _THREAD_ID.match(value) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
