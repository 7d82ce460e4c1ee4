"""Checks: shell commands run in a run's worktree, whose exit status is part of the goal."""

from __future__ import annotations

import asyncio
import shlex
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from looptui.engine.config import CheckConfig
from looptui.engine.errors import LooptuiError
from looptui.engine.models import CheckResult
from looptui.engine.process import WORKTREE_VARIABLE, Exit, find_executable, stream_process

SHELL = "/bin/sh"
KEPT_LINES = 2000  # the end of the output is what explains a failure; the start is dropped
KEPT_BYTES = 1024 * 1024  # likewise in bytes (characters), whatever the lines' length
NOT_FOUND = 127  # the shell's status for a command it cannot find
_SHELL_WORDS = frozenset(
    """
    ! . : [ [[ { ( alias break case cd command continue echo eval exec exit export false for
    if printf read return set shift source test times trap true type ulimit umask unset until
    wait while
    """.split()
)


async def run_check(check: CheckConfig, worktree: Path, environ: Mapping[str, str]) -> CheckResult:
    """Run one check to completion or to its timeout; never raises for the command's sake."""
    exit_status = Exit()
    lines = _Tail(KEPT_LINES, KEPT_BYTES)
    started = time.monotonic()
    timed_out = False
    # Tagged like an agent, so that a check left running by a crash can be found and stopped.
    environ = {**environ, WORKTREE_VARIABLE: str(worktree)}
    try:
        async with asyncio.timeout(check.timeout):
            async for line in stream_process(
                [SHELL, "-c", check.run], worktree, environ, exit_status
            ):
                lines.append(line.text)
    except TimeoutError:
        timed_out = True
        lines.append(f"[looptui: check timed out after {check.timeout:g}s and was stopped]")
    return CheckResult(
        name=check.name,
        command=check.run,
        exit_code=None if timed_out else exit_status.code,
        duration=time.monotonic() - started,
        output=lines.text(),
        timed_out=timed_out,
    )


def preflight_check(check: CheckConfig, environ: Mapping[str, str], cwd: Path) -> None:
    """Refuse a check whose program plainly does not exist, before any run starts.

    Only simple commands are judged (the first word of `run`, past VAR=value assignments);
    anything the shell would interpret, or a path the agent may yet create, is left to run.
    """
    try:
        words = shlex.split(check.run)
    except ValueError:
        return
    program = next((word for word in words if "=" not in word), None)
    if program is None or program in _SHELL_WORDS or "/" in program:
        return
    if any(char in program for char in "$`;|&<>()*?"):
        return
    if find_executable(program, environ, cwd) is None:
        raise LooptuiError(f"check {check.name!r}: command not found: {program}")


class _Tail:
    """The last lines of an output, at most `max_lines` of them and `max_size` characters."""

    def __init__(self, max_lines: int, max_size: int) -> None:
        self._lines: deque[str] = deque()
        self._max_lines = max_lines
        self._max_size = max_size
        self._size = 0

    def append(self, line: str) -> None:
        line = line[-(self._max_size - 1) :]
        self._lines.append(line)
        self._size += len(line) + 1
        while len(self._lines) > self._max_lines or self._size > self._max_size:
            self._size -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self._lines)
