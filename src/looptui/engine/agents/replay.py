"""The `replay` agent: plays a JSONL script of timed steps. Deterministic; for demos and tests.

Each line of the script is one JSON object with one action and optional timing:

    {"at": 0.5, "log": "reading the failing test"}          a line of output
    {"text": "The bug is in add()."}                          a message from the agent
    {"tool": "edit", "input": {"path": "calc.py"}}            a tool call, shown as such
    {"write": {"path": "notes.md", "content": "..."}}          write a file in the worktree
    {"edit": {"path": "calc.py", "old": "a - b", "new": "a + b"}}
    {"message": "Fixed add()."}                               the final message
    {"usage": {"input_tokens": 9000, "output_tokens": 400, "cost_usd": 0.03}}
                                                              what the turn spent so far
    {"fail": "gave up"}                                       end the turn as failed

`at` is seconds from the start of the turn (scaled by the agent's `speed`); `iteration` (a
number or a list) limits a step to those iterations of a run, so that one script can tell a
story across iterations. File paths are confined to the worktree.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looptui.engine.agents.base import (
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
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable
from looptui.engine.workspace.paths import PathEscape, confine

ACTIONS = ("log", "text", "tool", "write", "edit", "message", "usage", "fail")
USAGE_FIELDS = ("input_tokens", "output_tokens", "cost_usd")


@dataclass(frozen=True, slots=True)
class ReplayStep:
    action: str
    value: Any
    at: float = 0.0
    iterations: frozenset[int] | None = None
    tool_input: Mapping[str, Any] | None = None

    def applies_to(self, iteration: int) -> bool:
        return self.iterations is None or iteration in self.iterations


# Parsed scripts by path and a hash of their bytes: a hundred runs of one script share one
# copy of its steps, which keeps the heap (and so the garbage collector's full passes) small.
_parsed: dict[tuple[Path, str], tuple[ReplayStep, ...]] = {}


def load_script(path: Path) -> tuple[ReplayStep, ...]:
    """Parse a replay script; AgentUnavailable names the file and line of any problem."""
    try:
        data = path.read_bytes()
        key = (path, hashlib.sha256(data).hexdigest())
        if key in _parsed:
            return _parsed[key]
        lines = data.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentUnavailable(f"replay script {path}: cannot read it ({exc})") from None
    steps: list[ReplayStep] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            steps.append(_parse_step(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            raise AgentUnavailable(f"replay script {path}:{number}: {exc}") from None
    for stale in [cached for cached in _parsed if cached[0] == path]:
        del _parsed[stale]  # an older version of this script
    _parsed[key] = tuple(steps)
    return _parsed[key]


def _parse_step(raw: object) -> ReplayStep:
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    actions = [key for key in ACTIONS if key in raw]
    if len(actions) != 1:
        raise ValueError(f"expected exactly one of {', '.join(ACTIONS)}")
    action = actions[0]
    value = raw[action]
    at = raw.get("at", 0.0)
    if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
        raise ValueError("'at' must be a number of seconds >= 0")
    iterations = raw.get("iteration")
    if iterations is not None:
        numbers = iterations if isinstance(iterations, list) else [iterations]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise ValueError("'iteration' must be a number or a list of numbers")
        iterations = frozenset(numbers)
    if action in ("write", "edit"):
        needed = ("path", "content") if action == "write" else ("path", "old", "new")
        if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in needed):
            raise ValueError(f"'{action}' needs string fields {', '.join(needed)}")
    elif action == "usage":
        value = _parse_usage(value)
    elif not isinstance(value, str):
        raise ValueError(f"'{action}' must be a string")
    tool_input = raw.get("input", {}) if action == "tool" else None
    return ReplayStep(action, value, float(at), iterations, tool_input)


def _parse_usage(value: object) -> Usage:
    """A usage step's numbers: tokens whole, all of them 0 or more, none but USAGE_FIELDS."""
    if not isinstance(value, dict) or not value or set(value) - set(USAGE_FIELDS):
        raise ValueError(f"'usage' needs some of {', '.join(USAGE_FIELDS)}, and nothing else")
    for name, number in value.items():
        whole = name != "cost_usd"
        kinds = int if whole else int | float
        if isinstance(number, bool) or not isinstance(number, kinds):
            number = -1.0  # refused below
        if not (number >= 0 and math.isfinite(number)):  # json reads NaN and Infinity too
            what = "a whole number" if whole else "a number"
            raise ValueError(f"'usage.{name}' must be {what} >= 0")
    return Usage(
        value.get("input_tokens", 0), value.get("output_tokens", 0), value.get("cost_usd", 0.0)
    )


class ReplayAgent:
    """Plays its script's steps for the current iteration, in order, at their times."""

    def __init__(self, config: AgentConfig) -> None:
        assert config.script is not None
        self.name = config.name
        self.script_path = config.script
        self.speed = config.speed
        self._steps: tuple[ReplayStep, ...] | None = None

    def preflight(self, environ: Mapping[str, str], cwd: Path) -> None:
        self._steps = load_script(self.script_path)

    async def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        steps = self._steps if self._steps is not None else load_script(self.script_path)
        loop = asyncio.get_running_loop()
        started = loop.time()
        message = ""
        for step in steps:
            if not step.applies_to(task.iteration):
                continue
            if self.speed > 0:
                delay = started + step.at / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if step.action == "log":
                yield OutputLine(step.value)
            elif step.action == "text":
                yield Text(step.value)
            elif step.action == "tool":
                yield ToolCall(step.value, dict(step.tool_input or {}))
            elif step.action == "message":
                message = step.value
            elif step.action == "usage":
                yield step.value
            elif step.action == "fail":
                yield AgentError(step.value)
                yield Finished(ok=False, message=step.value, exit_code=1)
                return
            else:
                try:
                    yield ToolCall(step.action, {"path": step.value["path"]})
                    summary = _apply_file_step(task.worktree, step.action, step.value)
                    yield ToolResult(step.action, summary)
                except (PathEscape, OSError, ValueError) as exc:
                    yield ToolResult(step.action, str(exc), is_error=True)
                    yield AgentError(f"{step.action} {step.value['path']}: {exc}")
                    yield Finished(ok=False, message=str(exc), exit_code=1)
                    return
        if message:
            yield Text(message)
        yield Finished(ok=True, message=message, exit_code=0)


def _apply_file_step(worktree: Path, action: str, value: Mapping[str, str]) -> str:
    target = confine(worktree, value["path"])
    if action == "write":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value["content"], encoding="utf-8")
        return f"wrote {value['path']} ({len(value['content'])} characters)"
    text = target.read_text(encoding="utf-8")
    count = text.count(value["old"])
    if count != 1:
        raise ValueError(f"expected the old text once in {value['path']}, found it {count} times")
    target.write_text(text.replace(value["old"], value["new"]), encoding="utf-8")
    return f"edited {value['path']}"
