"""`looptui.toml`: read once with tomllib, checked, and turned into typed objects.

Every problem is reported as one line naming the file, the key path and what was expected,
so that a user can fix a typo without reading a traceback.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from looptui.engine.errors import ConfigError
from looptui.engine.secrets import secret_values

CONFIG_NAME = "looptui.toml"
AGENT_KINDS = ("command", "replay")
PROMPT_PLACEHOLDER = "{prompt}"
PROMPT_FILE_PLACEHOLDER = "{prompt_file}"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # safe in a git branch name
MAX_DURATION = 30 * 24 * 3600.0  # 30 days: past it a timeout is a typo, or an overflow


@dataclass(frozen=True)
class AgentConfig:
    """A named agent: `kind` selects the backend, the rest are that backend's options."""

    name: str
    kind: str
    command: tuple[str, ...] = ()  # command: argv, with {prompt} or {prompt_file}, else stdin
    script: Path | None = None  # replay: the JSONL script, resolved against the repository
    speed: float = 1.0  # replay: 2.0 plays twice as fast, 0 plays instantly
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckConfig:
    name: str
    run: str  # a shell command, run in the worktree
    timeout: float = 600.0


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


@dataclass(frozen=True)
class Config:
    path: Path
    agents: Mapping[str, AgentConfig]
    loops: Mapping[str, LoopConfig]
    max_parallel: int = 4

    def secret_values(self) -> list[str]:
        """Values of the agents' `env` tables whose names look secret, for the Redactor."""
        return [value for agent in self.agents.values() for value in secret_values(agent.env)]

    def loop(self, name: str) -> LoopConfig:
        try:
            return self.loops[name]
        except KeyError:
            known = ", ".join(sorted(self.loops)) or "none"
            raise ConfigError(
                f"unknown loop {name!r} (loops in {self.path.name}: {known})"
            ) from None


def load_config(path: Path) -> Config:
    """Read and check `path`; raise ConfigError with a one-line message on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; create one with `looptui init`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError carries the position only in its message.
        line = getattr(exc, "lineno", None) or _line_of(str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    return _Parser(path).config(data)


def _line_of(message: str) -> int | None:
    match = _TOML_POSITION.search(message)
    return int(match.group(1)) if match else None


def write_starter_config(path: Path) -> None:
    """Write a starter file to edit; refuse to overwrite an existing one."""
    starter = {
        "settings": {"max_parallel": 4},
        "agents": {
            "shell": {"kind": "command", "command": ["echo", "{prompt}"]},
        },
        "loops": {
            "fix": {
                "prompt": "Make the test suite pass.",
                "agent": "shell",
                "checks": [{"name": "tests", "run": "python -m pytest -q", "timeout": 600}],
                "max_iterations": 5,
                "iteration_timeout": "30m",
                "run_timeout": "2h",
                "stall_after": 3,
            }
        },
    }
    try:
        with path.open("xb") as handle:
            tomli_w.dump(starter, handle)
    except FileExistsError:
        raise ConfigError(f"{path}: already exists; not overwriting it") from None


def parse_duration(value: object) -> float | None:
    """Seconds from `90`, `1.5`, `"90s"`, `"10m"`, `"2h"` or `"500ms"`; None when invalid,
    not positive, or longer than MAX_DURATION."""
    if isinstance(value, bool):
        return None
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
        seconds = float(match.group(1)) * scale
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= MAX_DURATION:
        return None
    return seconds


class _Parser:
    """Walks the TOML document, tracking the key path for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent

    def fail(self, key: str, expected: str, value: object = ...) -> ConfigError:
        got = "" if value is ... else f", got {value!r}"
        return ConfigError(f"{self.path}: {key}: expected {expected}{got}")

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "a table", value)
        return value

    def only(self, table: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise ConfigError(
                    f"{self.path}: {where}: unknown key (expected one of {', '.join(allowed)})"
                )

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string", value)
        return value

    def positive_int(self, value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, "a positive integer", value)
        return value

    def duration(self, value: object, key: str) -> float:
        seconds = parse_duration(value)
        if seconds is None:
            raise self.fail(
                key, 'a positive duration up to 30 days, such as 90, "90s", "10m" or "2h"', value
            )
        return seconds

    def name(self, value: str, key: str) -> str:
        if not _NAME.match(value):
            raise self.fail(key, "a name of letters, digits, '_' or '-'", value)
        return value

    def config(self, data: dict[str, Any]) -> Config:
        self.only(data, "", ("settings", "agents", "loops"))
        settings = self.table(data.get("settings", {}), "settings")
        self.only(settings, "settings", ("max_parallel",))
        max_parallel = self.positive_int(settings.get("max_parallel", 4), "settings.max_parallel")
        agents_table = self.table(data.get("agents", {}), "agents")
        agents = {
            self.name(name, f"agents.{name}"): self.agent(name, value)
            for name, value in agents_table.items()
        }
        loops_table = self.table(data.get("loops", {}), "loops")
        loops = {
            self.name(name, f"loops.{name}"): self.loop(name, value, agents)
            for name, value in loops_table.items()
        }
        return Config(path=self.path, agents=agents, loops=loops, max_parallel=max_parallel)

    def agent(self, name: str, value: object) -> AgentConfig:
        key = f"agents.{name}"
        table = self.table(value, key)
        kind = table.get("kind")
        if kind not in AGENT_KINDS:
            raise self.fail(f"{key}.kind", f"one of {', '.join(AGENT_KINDS)}", kind)
        env = self.table(table.get("env", {}), f"{key}.env")
        for env_name, env_value in env.items():
            if not isinstance(env_value, str):
                raise self.fail(f"{key}.env.{env_name}", "a string", env_value)
        if kind == "command":
            self.only(table, key, ("kind", "command", "env"))
            command = table.get("command")
            if (
                not isinstance(command, list)
                or not command
                or not all(isinstance(part, str) and part for part in command)
            ):
                raise self.fail(f"{key}.command", "a non-empty list of strings (argv)", command)
            return AgentConfig(name=name, kind=kind, command=tuple(command), env=env)
        self.only(table, key, ("kind", "script", "speed", "env"))
        script = self.root / self.string(table.get("script"), f"{key}.script")
        speed = table.get("speed", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, int | float) or speed < 0:
            raise self.fail(f"{key}.speed", "a number >= 0", speed)
        return AgentConfig(name=name, kind=kind, script=script, speed=float(speed), env=env)

    def loop(self, name: str, value: object, agents: Mapping[str, AgentConfig]) -> LoopConfig:
        key = f"loops.{name}"
        table = self.table(value, key)
        for later in ("evaluator", "triggers"):
            if later in table:
                raise ConfigError(
                    f"{self.path}: {key}.{later}: not supported yet "
                    "(this version decides from the checks alone)"
                )
        self.only(
            table,
            key,
            (
                "prompt",
                "prompt_file",
                "agent",
                "checks",
                "base",
                "max_iterations",
                "iteration_timeout",
                "run_timeout",
                "stall_after",
            ),
        )
        prompt = self.prompt(table, key)
        agent = self.string(table.get("agent"), f"{key}.agent")
        if agent not in agents:
            known = ", ".join(sorted(agents)) or "none defined"
            raise self.fail(f"{key}.agent", f"the name of an agent ({known})", agent)
        checks = self.checks(table.get("checks", []), f"{key}.checks")
        base = table.get("base")
        if base is not None:
            base = self.string(base, f"{key}.base")
        return LoopConfig(
            name=name,
            prompt=prompt,
            agent=agent,
            checks=checks,
            base=base,
            max_iterations=self.positive_int(
                table.get("max_iterations", 5), f"{key}.max_iterations"
            ),
            iteration_timeout=self.duration(
                table.get("iteration_timeout", 1800), f"{key}.iteration_timeout"
            ),
            run_timeout=self.duration(table.get("run_timeout", 7200), f"{key}.run_timeout"),
            stall_after=self.positive_int(table.get("stall_after", 3), f"{key}.stall_after"),
        )

    def prompt(self, table: Mapping[str, Any], key: str) -> str:
        has_prompt, has_file = "prompt" in table, "prompt_file" in table
        if has_prompt == has_file:
            raise ConfigError(f"{self.path}: {key}: expected exactly one of prompt, prompt_file")
        if has_prompt:
            return self.string(table["prompt"], f"{key}.prompt")
        relative = self.string(table["prompt_file"], f"{key}.prompt_file")
        # The prompt is sent to an agent and stored: it must not be a way to read any file.
        root = self.root.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise self.fail(f"{key}.prompt_file", "a file inside the repository", relative)
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(f"{key}.prompt_file", "a readable text file", relative) from exc

    def checks(self, value: object, key: str) -> tuple[CheckConfig, ...]:
        if not isinstance(value, list):
            raise self.fail(key, "a list of commands or {name, run, timeout} tables", value)
        checks: list[CheckConfig] = []
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            if isinstance(item, str):
                checks.append(
                    CheckConfig(name=f"check{index + 1}", run=self.string(item, item_key))
                )
                continue
            table = self.table(item, item_key)
            self.only(table, item_key, ("name", "run", "timeout"))
            checks.append(
                CheckConfig(
                    name=self.string(table.get("name", f"check{index + 1}"), f"{item_key}.name"),
                    run=self.string(table.get("run"), f"{item_key}.run"),
                    timeout=self.duration(table.get("timeout", 600), f"{item_key}.timeout"),
                )
            )
        names = [check.name for check in checks]
        if len(set(names)) != len(names):
            raise self.fail(key, "checks with distinct names", names)
        return tuple(checks)
