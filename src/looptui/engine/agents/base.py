"""The agent protocol: given a task, yield normalized events, and finish with `Finished`.

Every backend (command, replay, and later Claude Code, Codex, the Anthropic and OpenAI APIs)
speaks this, so the loop runner never knows which one it drives.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from looptui.engine.skills.model import Skill

NOTE_STREAM = "looptui"  # the stream of looptui's own lines about an agent's output


@dataclass(frozen=True)
class AgentTask:
    """One turn of an agent: where to work, what to do, and what it may continue from."""

    run_id: str
    iteration: int
    worktree: Path
    prompt: str
    scratch_dir: Path  # private to the run, outside the worktree: prompt files and the like
    environ: Mapping[str, str] = field(default_factory=dict)
    system: str = ""
    resume_token: str | None = None  # from the last turn's Finished: continue that session
    # Hides secrets in anything the agent writes outside the store (a saved conversation)
    redact: Callable[[str], str] = field(default=str)
    # Replaces the agent's own system prompt (the evaluator's instructions, not a coder's);
    # `system` is still appended to it
    system_prompt: str | None = None
    # A reviewer's turn: the agent may read the worktree but never write in it
    read_only: bool = False
    allow_commands: bool = True  # may it run commands (with read_only: only if allowed)
    # (base, commit) of the change under review: the API agents get git_diff and git_log
    review_range: tuple[str, str] | None = None
    # the worktree was just checked out at this commit and holds nothing else (a run's
    # first turn in a new checkout): an agent need not look before it starts
    fresh_at: str | None = None
    # the loop's skills for this agent: the API agents' skill tools read them; Claude Code
    # and Codex find them placed in the worktree for the turn (engine/skills/placement.py)
    skills: tuple[Skill, ...] = ()


@dataclass(frozen=True)
class OutputLine:
    """A line an agent process printed (stream "stdout" or "stderr"), or looptui's own line
    about that output, such as how many lines were dropped (stream NOTE_STREAM)."""

    text: str
    stream: str = "stdout"


@dataclass(frozen=True)
class Text:
    """A message from the agent, in its own words."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolResult:
    name: str
    output: str
    is_error: bool = False


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class AgentError:
    message: str


@dataclass(frozen=True)
class Session:
    """The agent's resumable session is known: store it now, so that a kill mid-turn can
    continue it. `token` is what `Finished.resume_token` would carry; an agent yields it as
    soon as it knows it, once per distinct token in a turn."""

    token: str


@dataclass(frozen=True)
class SystemPrompt:
    """The system text looptui gives the model along with the task's prompt, said before it
    is sent: the whole system prompt, or (`appended`) text added to the agent's own built-in
    one (Claude Code's `--append-system-prompt`, Codex's developer instructions). An agent
    that sends no such text says nothing."""

    text: str
    appended: bool = False


@dataclass(frozen=True)
class Finished:
    """The last event of every turn. `ok` is the agent's own claim, never the verdict."""

    ok: bool
    message: str = ""
    exit_code: int | None = None
    resume_token: str | None = None
    cannot_start: bool = False  # the agent could not run at all: another turn will not help


AgentEvent = (
    OutputLine
    | Text
    | ToolCall
    | ToolResult
    | Usage
    | AgentError
    | Session
    | SystemPrompt
    | Finished
)


class Agent(Protocol):
    """A backend that performs one turn of work in a worktree."""

    name: str

    def preflight(self, environ: Mapping[str, str], cwd: Path) -> None:
        """Raise AgentUnavailable when the agent cannot start at all (a missing binary...).

        `cwd` is the repository root, against which relative program paths are found.
        """

    def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        """Do one turn; the last event is `Finished`. Cancelling stops the turn for good."""
        ...
