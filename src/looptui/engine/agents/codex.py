"""The `codex` agent: the Codex CLI's `codex exec --json`, read through its JSONL events.

The prompt goes on stdin (`-`), which is then closed; the worktree is the working root. The
thread id of `thread.started` is the resume token: the next iteration, or the run after a
restart, goes on with `codex exec resume <thread id>`. With `base_url`, a custom model
provider is configured by `-c` overrides (Responses API, the key read by Codex from the
variable `api_key_env` names; the key itself never appears in the command line).
"""

from __future__ import annotations

import json
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
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from looptui.engine.agents.json_cli import stream_events
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable
from looptui.engine.process import WORKTREE_VARIABLE, Exit, find_executable

INSTALL_HINT = "npm install -g @openai/codex"
PROVIDER = "looptui"


@dataclass
class CodexState:
    """What the events of one turn have said so far."""

    thread_id: str | None = None
    completed: bool = False
    failure: str | None = None
    last_message: str = ""
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=5))


class CodexAgent:
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
        config = self.config
        options = ["--json", "--skip-git-repo-check", "-c", f"sandbox_mode={_toml(config.sandbox)}"]
        if config.model:
            options += ["-m", config.model]
        if config.base_url:
            provider = f"model_providers.{PROVIDER}"
            overrides = {
                "model_provider": PROVIDER,
                f"{provider}.name": PROVIDER,
                f"{provider}.base_url": config.base_url,
                f"{provider}.wire_api": "responses",
                f"{provider}.env_key": config.api_key_env or "OPENAI_API_KEY",
            }
            for key, value in overrides.items():
                options += ["-c", f"{key}={_toml(value)}"]
        if task.resume_token:
            return [self.binary, "exec", "resume", *options, task.resume_token, "-"]
        return [self.binary, "exec", *options, "-C", str(task.worktree), "-"]

    async def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        environ = {**task.environ, **self.config.env, WORKTREE_VARIABLE: str(task.worktree)}
        state = CodexState(thread_id=task.resume_token)
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
        if state.failure is not None:
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


def parse_event(data: dict[str, Any], state: CodexState) -> Iterator[AgentEvent]:
    """The events of one `--json` line; unknown types and fields are skipped."""
    kind = data.get("type")
    if kind == "thread.started" and isinstance(data.get("thread_id"), str):
        state.thread_id = data["thread_id"]
    elif kind == "turn.completed":
        state.completed = True
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        yield Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")))
    elif kind == "turn.failed":
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        state.failure = f"codex: {message or 'the turn failed'}"
        yield AgentError(state.failure)
    elif kind == "error":
        yield OutputLine(f"[codex: {data.get('message', 'error')}]", NOTE_STREAM)
    elif kind in ("item.started", "item.completed") and isinstance(data.get("item"), dict):
        yield from _item(kind == "item.completed", data["item"], state)


def _item(completed: bool, item: dict[str, Any], state: CodexState) -> Iterator[AgentEvent]:
    kind = item.get("type")
    if kind == "agent_message" and completed:
        text = str(item.get("text") or "")
        state.last_message = text
        if text.strip():
            yield Text(text)
    elif kind == "command_execution":
        command = str(item.get("command") or "")
        if not completed:
            yield ToolCall("shell", {"command": command})
        else:
            code = item.get("exit_code")
            failed = item.get("status") in ("failed", "declined") or (code not in (0, None))
            yield ToolResult("shell", str(item.get("aggregated_output") or ""), failed)
    elif kind == "file_change" and completed:
        changes = item.get("changes") if isinstance(item.get("changes"), list) else []
        assert isinstance(changes, list)
        paths = [
            f"{change.get('kind')} {change.get('path')}"
            for change in changes
            if isinstance(change, dict)
        ]
        yield ToolCall("file_change", {"changes": paths})
        failed = item.get("status") == "failed"
        yield ToolResult("file_change", "\n".join(paths), failed)
    elif kind == "mcp_tool_call":
        name = f"mcp:{item.get('server')}/{item.get('tool')}"
        if not completed:
            arguments = item.get("arguments")
            yield ToolCall(name, arguments if isinstance(arguments, dict) else {})
        else:
            error = item.get("error")
            output = json.dumps(item.get("result")) if item.get("result") is not None else ""
            yield ToolResult(name, str(error or output), bool(error))
    elif kind == "error" and completed:
        yield OutputLine(f"[codex: {item.get('message', 'error')}]", NOTE_STREAM)


def _toml(value: str) -> str:
    """A TOML basic string (a JSON string is one) for a `-c key=value` override."""
    return json.dumps(value)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
