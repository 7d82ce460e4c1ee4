"""Running a CLI agent that reports on stdout as one JSON event per line (Claude Code, Codex).

The prompt goes on stdin, which is then closed; the worktree is the working directory; the
process has its own group (stopped with everything it started when the turn is cancelled).
stdout lines go to the agent's parser; stderr lines are shown, and the last few are kept for
the reason of a failure. Lines that are not events are shown in part (GARBAGE_SHOWN).
`with_skills` places the loop's skills where the CLI discovers them, for one turn.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any

from looptui.engine.agents.base import (
    NOTE_STREAM,
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    OutputLine,
)
from looptui.engine.process import Exit, stream_process
from looptui.engine.skills.delivery import CLI_SKILL_ROOTS
from looptui.engine.skills.placement import Placed, place_skills

MAX_OUTPUT_LINES = 20_000  # stream lines of one turn; past it they are counted, not kept
MAX_OUTPUT_BYTES = 32 * 1024 * 1024  # of one turn, likewise (events may carry whole files)
MAX_EVENT_BYTES = 1024 * 1024  # of one JSON event line (a tool result can carry a whole file)
GARBAGE_SHOWN = 2000  # characters shown of a line that is not an event


async def stream_events(
    argv: list[str],
    task: AgentTask,
    environ: Mapping[str, str],
    parse: Callable[[dict[str, Any]], Iterable[AgentEvent]],
    exit_status: Exit,
    stderr: deque[str],
) -> AsyncGenerator[AgentEvent, None]:
    """The events of one run of `argv`; when it cannot start at all, an error and a final
    `Finished(cannot_start=True)` (then nothing else is to be yielded by the caller)."""
    try:
        lines = stream_process(
            argv,
            task.worktree,
            environ,
            exit_status,
            stdin=task.prompt.encode(),
            max_lines=MAX_OUTPUT_LINES,
            max_line=MAX_EVENT_BYTES,
            max_bytes=MAX_OUTPUT_BYTES,
        )
        async for line in lines:
            if line.note:
                yield OutputLine(line.text, NOTE_STREAM)
            elif line.stream == "stderr":
                if line.text.strip():
                    stderr.append(line.text)
                yield OutputLine(line.text, "stderr")
            elif line.text.strip():
                event = _json_object(line.text)
                if event is None:  # garbage is shown, never fatal
                    text = line.text
                    yield OutputLine(
                        text if len(text) <= GARBAGE_SHOWN else text[:GARBAGE_SHOWN] + " …"
                    )
                else:
                    for parsed in parse(event):
                        yield parsed
    except OSError as exc:
        message = f"cannot start {argv[0]}: {exc.strerror or exc}"
        yield AgentError(message)
        yield Finished(ok=False, message=message, cannot_start=True)


async def with_skills(
    task: AgentTask, kind: str, turn: Callable[[AgentTask], AsyncGenerator[AgentEvent, None]]
) -> AsyncGenerator[AgentEvent, None]:
    """The events of `turn(task)`, with the task's skills placed where the CLI of `kind`
    discovers them for the turn's length, and removed when it ends however it ends. A
    placement that fails is said in the log, and the turn goes on without them."""
    try:
        placed = place_skills(task.worktree.resolve(), CLI_SKILL_ROOTS[kind], task.skills)
    except (OSError, ValueError) as exc:  # ValueError: PathEscape, a link out of the worktree
        placed = Placed([], [])
        names = ", ".join(skill.name for skill in task.skills)
        yield AgentError(
            f"the skills ({names}) could not be placed in the worktree, so this turn goes "
            f"without them: {exc}"
        )
    try:
        async with contextlib.aclosing(turn(task)) as events:
            async for event in events:
                yield event
    finally:
        placed.remove()


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
