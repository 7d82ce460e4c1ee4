"""The one stream the engine publishes: every event of every run, stored and fanned out.

An `Event` is what subscribers (the CLI's progress printer, the TUI's bridge, tests) receive,
after the store has written it. Its `kind` says what `data` holds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class EventKind(enum.StrEnum):
    STATUS = "status"  # data: status, error?
    ITERATION = "iteration"  # data: number, phase ("started" | "finished")
    OUTPUT = "output"  # data: line, stream ("stdout" | "stderr")
    TEXT = "text"  # data: text (an agent's message)
    TOOL_CALL = "tool_call"  # data: name, input
    TOOL_RESULT = "tool_result"  # data: name, output, is_error
    USAGE = "usage"  # data: input_tokens, output_tokens, cost_usd
    ERROR = "error"  # data: message
    AGENT_FINISHED = "agent_finished"  # data: ok, message, exit_code
    COMMIT = "commit"  # data: sha, files, added, removed
    CHECK = "check"  # data: name, command, exit_code, passed, timed_out, duration, tail
    GATE = "gate"  # data: commit, passed, duration, ignored (files the turn wrote that git ignores)
    VERDICT = "verdict"  # data: done, evaluator, confidence, reasons, next_steps, flags
    NOTE = "note"  # data: kind, text


@dataclass(frozen=True)
class Event:
    run_id: str
    kind: EventKind
    data: Mapping[str, Any] = field(default_factory=dict)
    iteration: int = 0
    ts: float = 0.0
    id: int | None = None  # the store's row id, set once written
