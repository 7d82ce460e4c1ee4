"""The `[hooks]` table (global, or a loop's own), checked as it loads.

Called by `parsing`, whose `_Parser` words every problem as one line naming the file, the
key path and what was expected. Nothing here runs a hook (`engine/hooks.py` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from looptui.engine.config.model import DEFAULT_HOOK_TIMEOUT, HookConfig, HookEvent
from looptui.engine.errors import ConfigError

if TYPE_CHECKING:
    from looptui.engine.config.parsing import _Parser

_NAMES = tuple(event.value for event in HookEvent)
_EXPECTED = 'a command string, or a list of command strings or { command = "...", timeout = "30s" }'


def parse_hooks(parser: _Parser, value: object, key: str) -> tuple[HookConfig, ...]:
    """The hooks of a `hooks` table: each key an event's snake_case name, each value one
    command or a list of them (strings, or tables with `command` and `timeout`)."""
    table = parser.table(value, key)
    hooks: list[HookConfig] = []
    for name, entry in table.items():
        if name not in _NAMES:
            raise ConfigError(
                f"{parser.path}: {key}.{name}: unknown hook event "
                f"(expected one of {', '.join(_NAMES)})"
            )
        event = HookEvent(name)
        entry_key = f"{key}.{name}"
        if isinstance(entry, list):
            for index, item in enumerate(entry):
                hooks.append(_hook(parser, event, item, f"{entry_key}[{index}]"))
        else:
            hooks.append(_hook(parser, event, entry, entry_key))
    return tuple(hooks)


def _hook(parser: _Parser, event: HookEvent, item: object, key: str) -> HookConfig:
    if isinstance(item, str):
        return HookConfig(event, parser.string(item, key))
    if not isinstance(item, dict):
        raise parser.fail(key, _EXPECTED, item)
    parser.only(item, key, ("command", "timeout"))
    return HookConfig(
        event,
        parser.string(item.get("command"), f"{key}.command"),
        parser.duration(item.get("timeout", DEFAULT_HOOK_TIMEOUT), f"{key}.timeout"),
    )
