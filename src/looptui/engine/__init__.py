"""The headless engine: loops, runs, worktrees, agents, checks, verdicts and the store.

Nothing here imports a UI toolkit; the CLI and the TUI both drive it through `Engine`.
"""

from looptui.engine.config import Config, load_config
from looptui.engine.errors import LooptuiError
from looptui.engine.events import Event, EventKind
from looptui.engine.models import Run, RunStatus
from looptui.engine.supervisor import Engine

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
