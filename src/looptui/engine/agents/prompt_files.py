"""Prompt files for agents that read their prompt from a file (`{prompt_file}`).

A prompt may quote secrets or private code, so its file lives only as long as the turn. A
looptui killed with SIGKILL cannot remove it, so prompt files are kept in one private
directory (`$XDG_STATE_HOME/looptui/prompts`, mode 0700) under names that start with the pid
of the looptui process that wrote them, and any file whose writer is dead is swept away at
the next start of looptui, and before each new prompt file is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

from looptui.engine.workspace.locations import state_home

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def prompt_dir() -> Path:
    """The private directory that holds every prompt file of this user."""
    return state_home() / "prompts"


def write_prompt_file(prompt: str, run_id: str, iteration: int) -> Path:
    """Write `prompt` to a new file only this user can read; the caller removes it."""
    directory = prompt_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)  # mkdir's mode holds only for a directory it creates
    sweep_stale_prompt_files()
    name = f"{os.getpid()}-{_UNSAFE.sub('_', run_id)}-{iteration}-{secrets.token_hex(4)}.md"
    path = directory / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(prompt)
    return path


def sweep_stale_prompt_files() -> int:
    """Remove the prompt files whose looptui process is gone; returns how many.

    Never raises: a state directory that cannot be read just keeps its files for later.
    """
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(prompt_dir()):
            owner = entry.name.split("-", 1)[0]
            if not entry.name.endswith(".md") or not owner.isdigit() or _alive(int(owner)):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds the pid: not ours, but alive
        return True
    return True
