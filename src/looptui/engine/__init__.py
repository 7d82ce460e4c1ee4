"""The headless engine: loops, runs, worktrees, agents, checks, verdicts and the store.

Nothing here imports a UI toolkit; the CLI and the TUI both drive it through `Engine`. The
names below are loaded on first use, so that importing one leaf module (the records in
`models`, which the protocol shares) does not load the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looptui.engine.config import Config, load_config
    from looptui.engine.errors import LooptuiError
    from looptui.engine.models import Run, RunStatus
    from looptui.engine.supervisor import Engine
    from looptui.protocol.events import Event, EventKind

_EXPORTS = {
    "Config": "looptui.engine.config",
    "load_config": "looptui.engine.config",
    "LooptuiError": "looptui.engine.errors",
    "Run": "looptui.engine.models",
    "RunStatus": "looptui.engine.models",
    "Engine": "looptui.engine.supervisor",
    "Event": "looptui.protocol.events",
    "EventKind": "looptui.protocol.events",
}

__all__ = [
    "Config",
    "Engine",
    "Event",
    "EventKind",
    "LooptuiError",
    "Run",
    "RunStatus",
    "load_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'looptui.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
