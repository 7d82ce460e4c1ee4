"""Where looptui keeps its state outside any repository: worktrees, prompt files, the log."""

from __future__ import annotations

import os
from pathlib import Path

from looptui.engine.errors import WorkspaceError


def state_home() -> Path:
    """looptui's own state outside any repository (worktrees, prompt files, the log):
    `$XDG_STATE_HOME/looptui`, by default `~/.local/state/looptui`."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "looptui"


def ensure_directory(path: Path) -> None:
    """Create `path` (a directory of looptui's state) or say in one line why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(path))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WorkspaceError(
            f"cannot use {path} for looptui's state: {reason}; "
            "point XDG_STATE_HOME at a writable directory"
        ) from None


def worktrees_home() -> Path:
    """Where runs' worktrees live: outside the repository and its `.git`, because coding
    agents refuse or sandbox writes under `.git` (Claude Code asks before editing there;
    Codex makes it read-only). `$XDG_STATE_HOME/looptui/worktrees`, by default
    `~/.local/state/looptui/worktrees`."""
    return state_home() / "worktrees"
