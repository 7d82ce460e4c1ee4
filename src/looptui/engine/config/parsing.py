"""The checks of `looptui.toml`'s tables, turning them into the typed objects of `model`.

Every problem is one line naming the file, the key path and what was expected, so that a
user can fix a typo without reading a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from looptui.engine.config.durations import parse_duration
from looptui.engine.config.hooks import parse_hooks
from looptui.engine.config.model import (
    AGENT_KINDS,
    CODEX_SANDBOXES,
    OPENAI_APIS,
    AgentConfig,
    CheckConfig,
    Config,
    HookConfig,
    LoopConfig,
)
from looptui.engine.config.triggers import check_after_edges, parse_policy, parse_triggers
from looptui.engine.errors import ConfigError
from looptui.engine.skills.validation import name_problems
from looptui.engine.triggers.placeholders import PLACEHOLDERS, unknown_placeholders
from looptui.engine.user_files import NotARegularFile, read_regular_file

_API_KEYS = (
    "model",
    "base_url",
    "api_key_env",
    "max_turns",
    "max_tokens",
    "max_retries",
    "request_timeout",
    "command_timeout",
    "output_cap",
    "input_price",
    "output_price",
)
# The options each kind of agent takes (besides `kind` and `env`).
_AGENT_KEYS: dict[str, tuple[str, ...]] = {
    "command": ("command",),
    "replay": ("script", "speed"),
    "claude-code": (
        "binary",
        "model",
        "permission_mode",
        "allowed_tools",
        "max_turns",
        "append_system_prompt",
        "mcp_config",
    ),
    "codex": ("binary", "model", "sandbox", "base_url", "api_key_env"),
    "anthropic": _API_KEYS,
    "openai": ("api", *_API_KEYS),
}

# Each slot is a whole checkout on disk, per base branch: a typo of 1000 must not fill a disk.
MAX_POOL_SIZE = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # safe in a git branch name
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_config(path: Path, data: dict[str, Any]) -> Config:
    """Check the decoded document `data` of the file at `path` and build its Config."""
    return _Parser(path).config(data)


def _reports_cost(agent: AgentConfig) -> bool:
    """Whether a dollar budget can ever be reached with this agent."""
    if agent.kind == "claude-code":
        return True  # Claude Code reports its cost
    return agent.kind in ("anthropic", "openai") and bool(agent.input_price or agent.output_price)


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

    def strings(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(i, str) and i.strip() for i in value):
            raise self.fail(key, "a list of non-empty strings", value)
        return tuple(value)

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
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
        self.only(data, "", ("settings", "agents", "loops", "hooks", "review"))
        settings = self.table(data.get("settings", {}), "settings")
        self.only(settings, "settings", ("max_parallel", "pool_size", "service"))
        max_parallel = self.positive_int(settings.get("max_parallel", 4), "settings.max_parallel")
        pool_size = settings.get("pool_size", 0)
        if (
            isinstance(pool_size, bool)
            or not isinstance(pool_size, int)
            or not 0 <= pool_size <= MAX_POOL_SIZE
        ):
            raise self.fail(
                "settings.pool_size", f"an integer from 0 (no pool) to {MAX_POOL_SIZE}", pool_size
            )
        service = settings.get("service", True)
        if not isinstance(service, bool):
            raise self.fail("settings.service", "true or false", service)
        review = self.table(data.get("review", {}), "review")
        self.only(review, "review", ("require_decisions",))
        require_decisions = review.get("require_decisions", False)
        if not isinstance(require_decisions, bool):
            raise self.fail("review.require_decisions", "true or false", require_decisions)
        agents_table = self.table(data.get("agents", {}), "agents")
        agents = {
            self.name(name, f"agents.{name}"): self.agent(name, value)
            for name, value in agents_table.items()
        }
        hooks = parse_hooks(self, data.get("hooks", {}), "hooks")
        loops_table = self.table(data.get("loops", {}), "loops")
        loops = {
            self.name(name, f"loops.{name}"): self.loop(
                name, value, agents, tuple(loops_table), hooks
            )
            for name, value in loops_table.items()
        }
        check_after_edges(self.path, loops)
        return Config(
            path=self.path,
            agents=agents,
            loops=loops,
            max_parallel=max_parallel,
            pool_size=pool_size,
            service=service,
            hooks=hooks,
            require_decisions=require_decisions,
        )

    def agent(self, name: str, value: object) -> AgentConfig:
        key = f"agents.{name}"
        table = self.table(value, key)
        kind = table.get("kind")
        if kind not in AGENT_KINDS:
            raise self.fail(f"{key}.kind", f"one of {', '.join(AGENT_KINDS)}", kind)
        self.only(table, key, ("kind", "env", *_AGENT_KEYS[kind]))
        env = self.table(table.get("env", {}), f"{key}.env")
        for env_name, env_value in env.items():
            if not isinstance(env_value, str):
                raise self.fail(f"{key}.env.{env_name}", "a string", env_value)
        options: dict[str, Any] = {"name": name, "kind": kind, "env": env}
        for option, raw in table.items():
            if option not in ("kind", "env"):
                options[option] = self.agent_option(option, raw, f"{key}.{option}")
        if kind == "command" and "command" not in options:
            raise self.fail(f"{key}.command", "a non-empty list of strings (argv)")
        if kind == "replay" and "script" not in options:
            raise self.fail(f"{key}.script", "a non-empty string")
        return AgentConfig(**options)

    def agent_option(self, option: str, value: object, key: str) -> object:
        """One agent option, checked and converted to the AgentConfig field's type."""
        if option in ("command", "allowed_tools"):
            if (
                not isinstance(value, list)
                or (option == "command" and not value)
                or not all(isinstance(part, str) and part for part in value)
            ):
                raise self.fail(key, "a non-empty list of strings", value)
            return tuple(value)
        if option in ("script", "mcp_config"):
            return self.root / self.string(value, key)
        if option == "speed":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise self.fail(key, "a number >= 0", value)
            return float(value)
        if option in ("input_price", "output_price"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise self.fail(key, "a price in dollars per million tokens, >= 0", value)
            return float(value)
        if option in ("max_turns", "max_tokens", "output_cap"):
            return self.positive_int(value, key)
        if option == "max_retries":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
                raise self.fail(key, "a whole number from 0 to 10", value)
            return value
        if option in ("request_timeout", "command_timeout"):
            return self.duration(value, key)
        if option == "api":
            if value not in OPENAI_APIS:
                raise self.fail(key, f"one of {', '.join(OPENAI_APIS)}", value)
            return value
        if option == "sandbox":
            if value not in CODEX_SANDBOXES:
                raise self.fail(key, f"one of {', '.join(CODEX_SANDBOXES)}", value)
            return value
        if option == "base_url":
            url = self.string(value, key)
            if not url.startswith(("http://", "https://")):
                raise self.fail(key, "an http:// or https:// URL", value)
            return url
        if option == "api_key_env":
            if not isinstance(value, str) or not _ENV_NAME.match(value):
                raise self.fail(key, "the name of an environment variable", value)
            return value
        return self.string(value, key)  # model, binary, permission_mode, append_system_prompt

    def loop(
        self,
        name: str,
        value: object,
        agents: Mapping[str, AgentConfig],
        loop_names: Sequence[str],
        global_hooks: tuple[HookConfig, ...] = (),
    ) -> LoopConfig:
        key = f"loops.{name}"
        table = self.table(value, key)
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
                "evaluator",
                "evaluator_failures",
                "max_tokens",
                "max_cost_usd",
                "setup",
                "clean_gate",
                "protected",
                "allow_test_edits",
                "evaluator_commands",
                "on_interrupt",
                "max_resumes",
                "triggers",
                "policy",
                "when",
                "hooks",
                "skills",
                "lessons",
                "checkpoint_writer",
                "evaluator_skills",
            ),
        )
        lessons = table.get("lessons", "propose")
        if lessons not in ("propose", "auto", "off"):
            raise self.fail(f"{key}.lessons", '"propose", "auto" or "off"', lessons)
        checkpoint_writer = table.get("checkpoint_writer")
        if checkpoint_writer is not None and checkpoint_writer not in agents:
            known = ", ".join(sorted(agents)) or "none defined"
            raise self.fail(
                f"{key}.checkpoint_writer", f"the name of an agent ({known})", checkpoint_writer
            )
        on_interrupt = table.get("on_interrupt", "resume")
        if on_interrupt not in ("resume", "pause"):
            raise self.fail(f"{key}.on_interrupt", '"resume" or "pause"', on_interrupt)
        prompt = self.prompt(table, key)
        if unknown := unknown_placeholders(prompt):
            raise ConfigError(
                f"{self.path}: {key}: unknown placeholder {{{unknown[0]}}} in the prompt "
                f"(placeholders: {', '.join('{' + name + '}' for name in PLACEHOLDERS)}; "
                "write {{ and }} for a brace)"
            )
        agent = self.string(table.get("agent"), f"{key}.agent")
        if agent not in agents:
            known = ", ".join(sorted(agents)) or "none defined"
            raise self.fail(f"{key}.agent", f"the name of an agent ({known})", agent)
        checks = self.checks(table.get("checks", []), f"{key}.checks")
        base = table.get("base")
        if base is not None:
            base = self.string(base, f"{key}.base")
        evaluator = table.get("evaluator")
        if evaluator is not None and evaluator not in agents:
            known = ", ".join(sorted(agents)) or "none defined"
            raise self.fail(f"{key}.evaluator", f"the name of an agent ({known})", evaluator)
        max_tokens = table.get("max_tokens")
        if max_tokens is not None:
            max_tokens = self.positive_int(max_tokens, f"{key}.max_tokens")
        max_cost = table.get("max_cost_usd")
        if max_cost is not None and (
            isinstance(max_cost, bool) or not isinstance(max_cost, int | float) or max_cost <= 0
        ):
            raise self.fail(f"{key}.max_cost_usd", "a positive number of dollars", max_cost)
        if max_cost is not None and not _reports_cost(agents[agent]):
            raise ConfigError(
                f"{self.path}: {key}.max_cost_usd: agent {agent!r} reports no cost "
                "(give it input_price and output_price, or use max_tokens)"
            )
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
            evaluator=evaluator,
            evaluator_failures=self.positive_int(
                table.get("evaluator_failures", 2), f"{key}.evaluator_failures"
            ),
            max_tokens=max_tokens,
            max_cost_usd=None if max_cost is None else float(max_cost),
            setup=self.strings(table.get("setup", []), f"{key}.setup"),
            clean_gate=self.boolean(table.get("clean_gate", True), f"{key}.clean_gate"),
            protected=self.strings(table.get("protected", []), f"{key}.protected"),
            allow_test_edits=self.boolean(
                table.get("allow_test_edits", False), f"{key}.allow_test_edits"
            ),
            evaluator_commands=self.boolean(
                table.get("evaluator_commands", False), f"{key}.evaluator_commands"
            ),
            on_interrupt=on_interrupt,
            max_resumes=self.positive_int(table.get("max_resumes", 3), f"{key}.max_resumes"),
            triggers=parse_triggers(self, table.get("triggers", []), f"{key}.triggers", loop_names),
            policy=parse_policy(self, table.get("policy", {}), f"{key}.policy"),
            when=self.strings(table.get("when", []), f"{key}.when"),
            hooks=global_hooks + parse_hooks(self, table.get("hooks", {}), f"{key}.hooks"),
            skills=self.skill_names(table.get("skills", []), f"{key}.skills"),
            lessons=lessons,
            checkpoint_writer=checkpoint_writer,
            evaluator_skills=self.skill_names(
                table.get("evaluator_skills", list(LoopConfig.evaluator_skills)),
                f"{key}.evaluator_skills",
            ),
        )

    def skill_names(self, value: object, key: str) -> tuple[str, ...]:
        """The names of the skills a loop chooses; whether each is found is asked where
        work starts (`check_skills`), since it depends on more than this file."""
        names = self.strings(value, key)
        for index, name in enumerate(names):
            problems = name_problems(name)
            if problems:
                raise ConfigError(f"{self.path}: {key}[{index}]: skill name {problems[0]}")
        if len(set(names)) != len(names):
            raise self.fail(key, "skill names without repeats", list(names))
        return names

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
        if path.relative_to(root).parts[:1] == (".git",):  # git's own files, looptui's store
            raise self.fail(f"{key}.prompt_file", "a file outside .git", relative)
        try:
            text = read_regular_file(path)
        except NotARegularFile as exc:
            raise self.fail(f"{key}.prompt_file", f"a regular file, not {exc}", relative) from None
        except (OSError, UnicodeDecodeError):
            raise self.fail(f"{key}.prompt_file", "a readable text file", relative) from None
        if "\0" in text:
            raise self.fail(f"{key}.prompt_file", "a text file without NUL characters", relative)
        return text

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
