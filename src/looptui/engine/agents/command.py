"""The `command` agent: any program, given the prompt as an argument, a file, or stdin."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path

from looptui.engine.agents.base import (
    NOTE_STREAM,
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    OutputLine,
)
from looptui.engine.agents.prompt_files import write_prompt_file
from looptui.engine.config import PROMPT_FILE_PLACEHOLDER, PROMPT_PLACEHOLDER, AgentConfig
from looptui.engine.errors import AgentUnavailable
from looptui.engine.process import WORKTREE_VARIABLE, Exit, find_executable, stream_process
from looptui.engine.workspace.repository import head_and_clean

FINAL_MESSAGE_LINES = 20
MAX_OUTPUT_LINES = 10_000  # of one turn; past it lines are counted, not kept (see process)
MAX_OUTPUT_BYTES = 10 * 1024 * 1024  # of one turn, likewise
CANNOT_START_WITHIN = 2.0  # seconds: a failure this quick that changed nothing is a start failure


class CommandAgent:
    """Runs an argv (never through a shell); its output lines are its events, its exit counts.

    The prompt replaces `{prompt}` inside any argument, or is written to a private file whose
    path replaces `{prompt_file}`; with neither placeholder it arrives on stdin.

    A turn that fails within CANNOT_START_WITHIN seconds, printing nothing on stdout, an
    error on stderr, and leaving the worktree as it found it, is an agent that cannot start
    (a bad flag, a missing key, a broken install): another turn would fail the same way.
    """

    def __init__(self, config: AgentConfig) -> None:
        self.name = config.name
        self.argv = config.command
        self.extra_env = dict(config.env)

    def preflight(self, environ: Mapping[str, str], cwd: Path) -> None:
        program = self.argv[0]
        if find_executable(program, {**environ, **self.extra_env}, cwd) is None:
            raise AgentUnavailable(f"agent {self.name!r}: command not found: {program}")

    async def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        try:
            argv, stdin, prompt_file = self._command_for(task)
        except OSError as exc:  # an unusable state directory: a turn that cannot start
            message = f"cannot write the prompt file: {exc.strerror or exc} ({exc.filename})"
            yield AgentError(message)
            yield Finished(ok=False, message=message, cannot_start=True)
            return
        environ = {
            **task.environ,
            **self.extra_env,
            "LOOPTUI_RUN_ID": task.run_id,
            "LOOPTUI_ITERATION": str(task.iteration),
            WORKTREE_VARIABLE: str(task.worktree),
        }
        exit_status = Exit()
        tail: deque[str] = deque(maxlen=FINAL_MESSAGE_LINES)
        errors: deque[str] = deque(maxlen=1)
        # what the worktree held, to tell a command that could not start (it changed nothing)
        # from one that failed at its work; a fresh checkout is known without a look
        before = None if task.fresh_at else await _worktree_state(task.worktree)
        started = time.monotonic()
        try:
            lines = stream_process(
                argv,
                task.worktree,
                environ,
                exit_status,
                stdin,
                max_lines=MAX_OUTPUT_LINES,
                max_bytes=MAX_OUTPUT_BYTES,
            )
            async for line in lines:
                if line.note:
                    yield OutputLine(line.text, NOTE_STREAM)
                    continue
                if line.text.strip():
                    (tail if line.stream == "stdout" else errors).append(line.text)
                yield OutputLine(line.text, line.stream)
        except OSError as exc:
            if exc.errno == errno.E2BIG:  # the kernel's limit on arguments, not a missing binary
                size = len(task.prompt.encode())
                message = (
                    f"the prompt ({size} bytes) is too long to pass to {argv[0]} as an argument; "
                    "use {prompt_file} or stdin in the agent's command instead of {prompt}"
                )
                yield AgentError(message)
                yield Finished(ok=False, message=message, cannot_start=True)
                return
            # the binary vanished or is not executable
            message = f"cannot start {argv[0]}: {exc.strerror or exc}"
            yield AgentError(message)
            yield Finished(ok=False, message=message, cannot_start=True)
            return
        finally:
            # The prompt may quote secrets or private code; it lives only as long as the turn.
            if prompt_file is not None:
                prompt_file.unlink(missing_ok=True)
        code = exit_status.code
        message = "\n".join(tail)
        if code != 0:
            yield AgentError(f"{argv[0]} exited with status {code}")
            quick = time.monotonic() - started < CANNOT_START_WITHIN
            if quick and not tail and errors and await _unchanged(task, before):
                yield Finished(ok=False, message=errors[0], exit_code=code, cannot_start=True)
                return
        yield Finished(ok=code == 0, message=message, exit_code=code)

    def _command_for(self, task: AgentTask) -> tuple[list[str], bytes | None, Path | None]:
        """The argv, the stdin and the prompt file (to remove after the turn) of a turn."""
        uses_file = any(PROMPT_FILE_PLACEHOLDER in part for part in self.argv)
        uses_arg = any(PROMPT_PLACEHOLDER in part for part in self.argv)
        # In the private prompt directory, not the run's scratch dir: a prompt file that a
        # killed looptui left behind is found and swept there (see prompt_files).
        prompt_file = (
            write_prompt_file(task.prompt, task.run_id, task.iteration) if uses_file else None
        )
        argv = [
            part.replace(PROMPT_FILE_PLACEHOLDER, str(prompt_file)).replace(
                PROMPT_PLACEHOLDER, task.prompt
            )
            for part in self.argv
        ]
        stdin = None if uses_file or uses_arg else task.prompt.encode()
        return argv, stdin, prompt_file


async def _unchanged(task: AgentTask, before: bytes | None) -> bool:
    """Whether the turn left the worktree as it found it."""
    after = await _worktree_state(task.worktree)
    if before is not None:
        return after == before
    head, clean = head_and_clean(after.decode(errors="replace"))
    return clean and head == task.fresh_at


async def _worktree_state(worktree: Path) -> bytes:
    """The worktree's HEAD and status, to tell whether a turn changed anything (git's error
    text, when it is not a repository, compares just as well).

    Git may look no higher than the worktree (a worktree deleted and made again must never
    lead it to the user's checkout above) and writes nothing (no index refresh)."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CEILING_DIRECTORIES": str(worktree.parent),
        "GIT_OPTIONAL_LOCKS": "0",
    }
    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=all",
            cwd=worktree,
            env=environ,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:  # the worktree is gone: a state of its own
        return f"gone: {exc.strerror}".encode()
    output, _ = await process.communicate()
    return output
