"""`looptui.toml`: read once with tomllib, checked, and turned into typed objects.

`load_config` (in `loading`, with `CONFIG_NAME`) reads the file; `parsing` checks its tables
and words each problem as one line (`triggers` does so for a loop's triggers and policy,
`durations` reads "90s", `hooks` the `[hooks]` tables); `model` holds what they become:
`Config`, `LoopConfig`, `AgentConfig`, `CheckConfig` and `HookConfig`. Import any of them
from here.
"""

from looptui.engine.config.durations import MAX_DURATION, parse_duration
from looptui.engine.config.loading import CONFIG_NAME, load_config, write_starter_config
from looptui.engine.config.model import (
    AGENT_KINDS,
    CODEX_SANDBOXES,
    DEFAULT_HOOK_TIMEOUT,
    OPENAI_APIS,
    PROMPT_FILE_PLACEHOLDER,
    PROMPT_PLACEHOLDER,
    AgentConfig,
    CheckConfig,
    Config,
    HookConfig,
    HookEvent,
    LoopConfig,
)
from looptui.engine.errors import ConfigError

__all__ = [
    "AGENT_KINDS",
    "CODEX_SANDBOXES",
    "CONFIG_NAME",
    "DEFAULT_HOOK_TIMEOUT",
    "MAX_DURATION",
    "OPENAI_APIS",
    "PROMPT_FILE_PLACEHOLDER",
    "PROMPT_PLACEHOLDER",
    "AgentConfig",
    "CheckConfig",
    "Config",
    "ConfigError",
    "HookConfig",
    "HookEvent",
    "LoopConfig",
    "load_config",
    "parse_duration",
    "write_starter_config",
]
