"""Child processes in their own process group, streamed line by line, stopped for good.

Agents and checks both run here. Each child leads a new session, so that stopping it (on
cancel, timeout or exit) kills everything it started, and every child is reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_LINE = 64 * 1024  # a longer line is cut and marked, so one huge line cannot eat memory
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PIPE_GRACE = 0.5  # seconds a finished process's children may keep its pipes open
EXIT_POLL = 0.1


@dataclass(frozen=True)
class Line:
    text: str
    stream: str  # "stdout" or "stderr"


@dataclass
class Exit:
    code: int | None = None  # negative for a signal, as asyncio reports it


def find_executable(program: str, environ: Mapping[str, str], cwd: Path) -> str | None:
    """Where `program` would be found by exec, or None."""
    if "/" in program:
        path = program if os.path.isabs(program) else str(cwd / program)
        return path if os.access(path, os.X_OK) and os.path.isfile(path) else None
    return shutil.which(program, path=environ.get("PATH", os.defpath))


async def stream_process(
    argv: Sequence[str],
    cwd: Path,
    environ: Mapping[str, str],
    exit_status: Exit,
    stdin: bytes | None = None,
) -> AsyncIterator[Line]:
    """Run `argv` and yield its output lines; set `exit_status.code` when it has ended.

    Closing or cancelling the iterator stops the process group (SIGTERM, then SIGKILL).
    Raises FileNotFoundError or PermissionError when `argv[0]` cannot be executed.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(environ),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    queue: asyncio.Queue[Line | None] = asyncio.Queue()
    assert process.stdout is not None and process.stderr is not None
    helpers = [
        asyncio.create_task(_pump(process.stdout, "stdout", queue)),
        asyncio.create_task(_pump(process.stderr, "stderr", queue)),
        asyncio.create_task(_close_pipes_after_exit(process)),
    ]
    if stdin is not None:
        helpers.append(asyncio.create_task(_feed(process, stdin)))
    try:
        open_streams = 2
        while open_streams:
            line = await queue.get()
            if line is None:
                open_streams -= 1
            else:
                yield line
        exit_status.code = await process.wait()
    finally:
        await stop_process_group(process)
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)


async def stop_process_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's group, SIGKILL whatever is left after a grace period, and reap."""
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), TERM_GRACE)
    # Children the leader left behind die too, even when the leader exited on its own.
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (someone else's counts)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _pump(stream: asyncio.StreamReader, name: str, queue: asyncio.Queue[Line | None]) -> None:
    """Split a stream into lines without StreamReader's line-length limit."""
    pending = b""
    try:
        while chunk := await stream.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                queue.put_nowait(Line(_decode(raw), name))
            if len(pending) > MAX_LINE:
                queue.put_nowait(Line(_decode(pending[:MAX_LINE]) + " …[line cut]", name))
                pending = b""
        if pending:
            queue.put_nowait(Line(_decode(pending), name))
    finally:
        queue.put_nowait(None)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(data)
        await process.stdin.drain()
    process.stdin.close()


async def _close_pipes_after_exit(process: asyncio.subprocess.Process) -> None:
    """A background grandchild may hold the pipes open; once the leader is gone, end it.

    `process.wait()` itself waits for the pipes to close, so the leader's exit is polled.
    """
    while process.returncode is None:  # noqa: ASYNC110 - no event fires on exit alone
        await asyncio.sleep(EXIT_POLL)
    await asyncio.sleep(PIPE_GRACE)
    _signal_group(process.pid, signal.SIGKILL)
