"""The typed objects `looptui.toml` becomes: agents, checks, loops and the whole config.

They are built once by `load_config` and passed in; nothing here reads a file.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from looptui.engine.errors import ConfigError
from looptui.engine.secrets import secret_values
from looptui.engine.triggers.model import Policy, Trigger

AGENT_KINDS = ("command", "replay", "claude-code", "codex", "anthropic", "openai")
OPENAI_APIS = ("chat", "responses")
CODEX_SANDBOXES = ("read-only", "workspace-write", "danger-full-access")
PROMPT_PLACEHOLDER = "{prompt}"
PROMPT_FILE_PLACEHOLDER = "{prompt_file}"
DEFAULT_HOOK_TIMEOUT = 60.0


class HookEvent(enum.StrEnum):
    """A moment in a run's life that hooks can be run on, by its name in `looptui.toml`."""

    RUN_START = "run_start"  # the worktree is ready, before the first agent turn
    ITERATION_END = "iteration_end"
    VERDICT = "verdict"
    RUN_END = "run_end"  # any final status
    NEEDS_REVIEW = "needs_review"  # the run succeeded: its work waits for the human
    BEFORE_MERGE = "before_merge"  # before a merge changes anything

    @property
    def wire_name(self) -> str:
        """The name in the hook's JSON (`hook_event_name`), cased as Claude Code's are."""
        return "".join(part.capitalize() for part in self.value.split("_"))

    @property
    def blocking(self) -> bool:
        """Whether a hook's exit status 2 stops what the event announces."""
        return self in (HookEvent.RUN_START, HookEvent.BEFORE_MERGE)


@dataclass(frozen=True)
class AgentConfig:
    """A named agent: `kind` selects the backend, the rest are that backend's options."""

    name: str
    kind: str
    command: tuple[str, ...] = ()  # command: argv, with {prompt} or {prompt_file}, else stdin
    script: Path | None = None  # replay: the JSONL script, resolved against the repository
    speed: float = 1.0  # replay: 2.0 plays twice as fast, 0 plays instantly
    env: Mapping[str, str] = field(default_factory=dict)
    # claude-code, codex, anthropic, openai
    model: str | None = None
    max_turns: int | None = None  # tool round trips in one turn
    # claude-code and codex: the program (default `claude` / `codex`, found on PATH)
    binary: str | None = None
    # claude-code
    permission_mode: str | None = None
    allowed_tools: tuple[str, ...] = ()
    append_system_prompt: str | None = None
    mcp_config: Path | None = None
    # codex
    sandbox: str = "workspace-write"
    # codex, anthropic, openai: a gateway or any compatible server, and the variable that
    # holds its key (never the key itself)
    base_url: str | None = None
    api_key_env: str | None = None
    # anthropic, openai
    api: str = "chat"  # openai: "chat" (Chat Completions) or "responses"
    max_tokens: int = 8192  # of one model reply
    max_retries: int = 3  # of one request, after 429, 5xx, overload, a reset or a timeout
    request_timeout: float = 600.0
    command_timeout: float = 120.0  # of the run_command tool
    output_cap: int = 30_000  # characters of a tool's output the model sees
    input_price: float = 0.0  # dollars per million tokens, for the cost of a turn
    output_price: float = 0.0


@dataclass(frozen=True)
class CheckConfig:
    """A named shell command whose exit status says whether an iteration's work passes."""

    name: str
    run: str  # a shell command, run in the worktree
    timeout: float = 600.0


@dataclass(frozen=True)
class HookConfig:
    """A shell command run on one event of a run's life, given the event as JSON on stdin."""

    event: HookEvent
    command: str  # the user's own shell text, run with /bin/sh -c in the run's worktree
    timeout: float = DEFAULT_HOOK_TIMEOUT


@dataclass(frozen=True)
class LoopConfig:
    """A named loop: what to ask, whom to ask, how to tell when it is done, and its budgets."""

    name: str
    prompt: str
    agent: str
    checks: tuple[CheckConfig, ...] = ()
    base: str | None = None  # base branch; None means the branch checked out when the run starts
    max_iterations: int = 5
    iteration_timeout: float = 1800.0
    run_timeout: float = 7200.0
    stall_after: int = 3
    evaluator: str | None = None  # an agent's name: judges each iteration after the checks
    evaluator_failures: int = 2  # consecutive unknown verdicts before the run pauses
    max_tokens: int | None = None  # the run's budget, input and output tokens together
    max_cost_usd: float | None = None
    # verification: "done" is decided on what would merge
    setup: tuple[str, ...] = ()  # shell commands that prepare a clean checkout (`uv sync`)
    clean_gate: bool = True  # re-run the checks on a clean checkout of the commit to merge
    protected: tuple[str, ...] = ()  # globs the agent may not change at all
    allow_test_edits: bool = False  # changing tests is the task: test edits are not flagged
    evaluator_commands: bool = False  # the evaluator may run commands in its checkout
    # after a crash of the service: continue the run at once, or wait for `looptui resume`
    on_interrupt: Literal["resume", "pause"] = "resume"
    max_resumes: int = 3  # automatic resumes in a row (no iteration finished between them)
    # unattended runs: what starts them (none: a loop run by hand), and what a firing does
    # when runs are going or were missed; `when` holds the cheap commands asked first
    triggers: tuple[Trigger, ...] = ()
    policy: Policy = field(default_factory=Policy)
    when: tuple[str, ...] = ()
    # the global [hooks], then the loop's own, in the order written
    hooks: tuple[HookConfig, ...] = ()
    # Agent Skills the loop's agents receive, by name, in order of priority (engine/skills/)
    skills: tuple[str, ...] = ()
    # memory: a finished run's lessons are proposed to the human, kept at once, or not made
    lessons: Literal["propose", "auto", "off"] = "propose"
    checkpoint_writer: str | None = None  # an agent that writes each iteration's checkpoint
    # the skills its evaluator receives (the shipped strict reviewer unless the loop says)
    evaluator_skills: tuple[str, ...] = ("strict-reviewer",)


@dataclass(frozen=True)
class Config:
    """The whole of one `looptui.toml`: its agents and loops by name, and its settings."""

    path: Path
    agents: Mapping[str, AgentConfig]
    loops: Mapping[str, LoopConfig]
    max_parallel: int = 4
    pool_size: int = 0  # worktrees kept checked out per base branch, ready for runs (0: none)
    service: bool = True  # runs belong to `looptui serve`; False: to the process that starts them
    hooks: tuple[HookConfig, ...] = ()  # the global [hooks] (each loop's `hooks` starts with them)
    # [review] require_decisions: a merge is refused while any hunk of the run is undecided
    require_decisions: bool = False

    def secret_values(self) -> list[str]:
        """Values of the agents' `env` tables whose names look secret, for the Redactor."""
        return [value for agent in self.agents.values() for value in secret_values(agent.env)]

    def hooks_of(self, loop: str) -> tuple[HookConfig, ...]:
        """The hooks a run of `loop` fires: its loop's, or the global ones when the loop is
        no longer configured."""
        found = self.loops.get(loop)
        return self.hooks if found is None else found.hooks

    def loop(self, name: str) -> LoopConfig:
        """The loop called `name`; ConfigError naming the loops there are when none is."""
        try:
            return self.loops[name]
        except KeyError:
            known = ", ".join(sorted(self.loops)) or "none"
            raise ConfigError(
                f"unknown loop {name!r} (loops in {self.path.name}: {known})"
            ) from None
