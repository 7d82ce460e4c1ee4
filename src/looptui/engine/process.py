"""Child processes in their own process group, streamed line by line, stopped for good.

Agents and checks both run here. Each child leads a new session, so that stopping it (on
cancel, timeout or exit) kills everything it started, and every child is reaped.

Output is read no faster than it is consumed: a bounded queue sits between the pipes and the
consumer, so a child that floods its output waits on a full pipe instead of filling memory.
Past an optional line budget, lines are counted and dropped (cheaply, without decoding them),
with a note every few seconds and the last lines of each stream kept for the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINE = 64 * 1024  # a longer line is cut and marked, so one huge line cannot eat memory
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PIPE_GRACE = 0.5  # seconds a finished process's children may keep its pipes open
EXIT_POLL = 0.1
READ_SIZE = 64 * 1024
LINE_QUEUE = 1024  # lines read ahead of the consumer; past that the child waits on its pipe
DROP_REPORT_INTERVAL = 2.0  # seconds between notes while lines are being dropped
DROP_PAUSE = 0.001  # seconds per chunk read while dropping: a flood is slowed, not spun on
KEPT_AT_END = 20  # lines of each stream shown at its end after lines were dropped
_TAIL_BYTES = KEPT_AT_END * 512  # enough of a dropped stream to find its last lines


WORKTREE_VARIABLE = "LOOPTUI_WORKTREE"  # set for agents and checks: finds them after a crash
_live_groups: set[int] = set()  # process groups started here and not yet reaped


@dataclass(frozen=True)
class Line:
    text: str
    stream: str  # "stdout" or "stderr"
    note: bool = False  # looptui's own line about the output (lines dropped), not the child's


@dataclass
class Exit:
    code: int | None = None  # negative for a signal, as asyncio reports it


@dataclass
class _Budget:
    """Lines the consumer may still get; past it lines are counted instead of queued."""

    limit: int | None  # None: no limit
    remaining: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # by stream
    reported_at: float = 0.0

    def __post_init__(self) -> None:
        self.remaining = self.limit or 0

    @property
    def spent(self) -> bool:
        return self.limit is not None and self.remaining <= 0

    def take(self) -> bool:
        """Count one line kept; False when the budget was already spent."""
        if self.limit is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


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
    max_lines: int | None = None,
    max_line: int = MAX_LINE,
) -> AsyncIterator[Line]:
    """Run `argv` and yield its output lines; set `exit_status.code` when it has ended.

    After `max_lines` lines (of both streams together), further lines are dropped: notes
    (`Line.note`) count them as it happens, and each stream's last lines come at its end.
    A stdout line longer than `max_line` bytes is cut (stderr's at MAX_LINE).
    Closing or cancelling the iterator stops the process group (SIGTERM, then SIGKILL).
    Raises OSError (FileNotFoundError, PermissionError, E2BIG...) when `argv` cannot be run.
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
    _live_groups.add(process.pid)
    queue: asyncio.Queue[Line | None] = asyncio.Queue(maxsize=LINE_QUEUE)
    budget = _Budget(max_lines)
    assert process.stdout is not None and process.stderr is not None
    helpers = [
        asyncio.create_task(_pump(process.stdout, "stdout", queue, budget, max_line)),
        asyncio.create_task(_pump(process.stderr, "stderr", queue, budget, MAX_LINE)),
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
    _live_groups.discard(process.pid)


def kill_process_groups() -> int:
    """SIGKILL every process group started here that is still going, at once (for an exit
    that cannot wait for a graceful stop); returns how many there were."""
    groups = list(_live_groups)
    for group in groups:
        _signal_group(group, signal.SIGKILL)
    return len(groups)


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


def kill_orphans(worktree: str) -> int:
    """Kill what is left of a run whose looptui process died (kill -9, a crash): every process
    of this user whose environment says it works in `worktree` (WORKTREE_VARIABLE, which
    agents and checks inherit), with its process group. Returns how many processes were found.

    Linux only (it reads /proc); elsewhere nothing is found. The variable's value names the
    run's own worktree, so unrelated processes are never touched.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    tag = f"{WORKTREE_VARIABLE}={worktree}".encode()
    uid, me = os.getuid(), os.getpid()
    found: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if tag in environ.split(b"\0"):
            found.append(int(entry.name))
    groups: set[int] = set()
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(pid))
    for group in groups - {os.getpgrp()}:
        _signal_group(group, signal.SIGKILL)
    for pid in found:  # any that left its group, or shares ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(found)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _pump(
    stream: asyncio.StreamReader,
    name: str,
    queue: asyncio.Queue[Line | None],
    budget: _Budget,
    max_line: int,
) -> None:
    """Split a stream into lines without StreamReader's line-length limit; `None` ends it."""
    pending = b""
    tail = b""  # the end of what was dropped, for its last lines
    try:
        while chunk := await stream.read(READ_SIZE):
            if budget.spent:
                # Counting newlines is cheap; decoding and queueing a flood is not.
                tail = (tail + pending + chunk)[-_TAIL_BYTES:]
                pending = b""
                budget.dropped[name] = budget.dropped.get(name, 0) + chunk.count(b"\n")
                await _report_dropped(budget, name, queue)
                await asyncio.sleep(DROP_PAUSE)
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for index, raw in enumerate(lines):
                if not budget.take():
                    rest = lines[index:]
                    budget.dropped[name] = budget.dropped.get(name, 0) + len(rest)
                    tail = b"\n".join(rest)[-_TAIL_BYTES:] + b"\n"
                    await _report_dropped(budget, name, queue)
                    break
                await queue.put(Line(_decode(raw), name))
            if len(pending) > max_line and budget.take():
                await queue.put(Line(_decode(pending[:max_line]) + " …[line cut]", name))
                pending = b""
    except OSError:  # a broken pipe ends the stream like its end of file
        pass
    if name in budget.dropped:
        await _put_dropped_end(budget, name, tail + pending, queue)
    elif pending:
        await queue.put(Line(_decode(pending), name))
    await queue.put(None)


async def _report_dropped(budget: _Budget, name: str, queue: asyncio.Queue[Line | None]) -> None:
    """A note when dropping starts, then one every few seconds while it goes on."""
    now = time.monotonic()
    if not budget.reported_at:
        text = (
            f"[looptui: more than {budget.limit} lines of output; further lines are counted "
            f"but not kept, and the last {KEPT_AT_END} of each stream are shown at its end]"
        )
    elif now - budget.reported_at >= DROP_REPORT_INTERVAL:
        text = f"[looptui: {budget.dropped[name]} {name} lines dropped so far]"
    else:
        return
    budget.reported_at = now
    await queue.put(Line(text, name, note=True))


async def _put_dropped_end(
    budget: _Budget, name: str, tail: bytes, queue: asyncio.Queue[Line | None]
) -> None:
    """The count of a stream's dropped lines, then its last lines."""
    lines = tail.split(b"\n")
    if lines[-1]:
        budget.dropped[name] += 1  # an unterminated last line
    else:
        lines.pop()  # the text ended with a newline
    if len(tail) >= _TAIL_BYTES:
        lines = lines[1:]  # the first one is cut
    last = lines[-KEPT_AT_END:]
    count = budget.dropped[name]
    text = f"[looptui: {count} {name} lines dropped in all; the last {len(last)} follow]"
    await queue.put(Line(text, name, note=True))
    for raw in last:
        await queue.put(Line(_decode(raw[:MAX_LINE]), name))


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
