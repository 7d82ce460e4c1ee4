"""The `command` agent: any program, given the prompt as an argument, a file, or stdin."""

from __future__ import annotations

import errno
import os
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
from looptui.engine.config import PROMPT_FILE_PLACEHOLDER, PROMPT_PLACEHOLDER, AgentConfig
from looptui.engine.errors import AgentUnavailable
from looptui.engine.process import WORKTREE_VARIABLE, Exit, find_executable, stream_process

FINAL_MESSAGE_LINES = 20
MAX_OUTPUT_LINES = 10_000  # of one turn; past it lines are counted, not kept (see process)


class CommandAgent:
    """Runs an argv (never through a shell); its output lines are its events, its exit counts.

    The prompt replaces `{prompt}` inside any argument, or is written to a private file whose
    path replaces `{prompt_file}`; with neither placeholder it arrives on stdin.
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
        argv, stdin = self._command_for(task)
        environ = {
            **task.environ,
            **self.extra_env,
            "LOOPTUI_RUN_ID": task.run_id,
            "LOOPTUI_ITERATION": str(task.iteration),
            WORKTREE_VARIABLE: str(task.worktree),
        }
        exit_status = Exit()
        tail: deque[str] = deque(maxlen=FINAL_MESSAGE_LINES)
        try:
            lines = stream_process(
                argv, task.worktree, environ, exit_status, stdin, max_lines=MAX_OUTPUT_LINES
            )
            async for line in lines:
                if line.note:
                    yield OutputLine(line.text, NOTE_STREAM)
                    continue
                if line.stream == "stdout" and line.text.strip():
                    tail.append(line.text)
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
            yield AgentError(f"cannot start {argv[0]}: {exc.strerror or exc}")
            yield Finished(ok=False, message=f"cannot start {argv[0]}", cannot_start=True)
            return
        finally:
            # The prompt may quote secrets or private code; it lives only as long as the turn.
            self._prompt_file(task).unlink(missing_ok=True)
        code = exit_status.code
        message = "\n".join(tail)
        if code != 0:
            yield AgentError(f"{argv[0]} exited with status {code}")
        yield Finished(ok=code == 0, message=message, exit_code=code)

    @staticmethod
    def _prompt_file(task: AgentTask) -> Path:
        return task.scratch_dir / f"prompt-{task.iteration}.md"

    def _command_for(self, task: AgentTask) -> tuple[list[str], bytes | None]:
        uses_file = any(PROMPT_FILE_PLACEHOLDER in part for part in self.argv)
        uses_arg = any(PROMPT_PLACEHOLDER in part for part in self.argv)
        prompt_file = self._prompt_file(task)
        if uses_file:
            task.scratch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(prompt_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(task.prompt)
        argv = [
            part.replace(PROMPT_FILE_PLACEHOLDER, str(prompt_file)).replace(
                PROMPT_PLACEHOLDER, task.prompt
            )
            for part in self.argv
        ]
        stdin = None if uses_file or uses_arg else task.prompt.encode()
        return argv, stdin
