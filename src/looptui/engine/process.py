"""Child processes in their own process group, streamed line by line, stopped for good.

Agents and checks both run here. Each child leads a new session, so that stopping it (on
cancel, timeout or exit) kills everything it started, and every child is reaped.

Output is read no faster than it is consumed: a bounded queue sits between the pipes and the
consumer, so a child that floods its output waits on a full pipe instead of filling memory.
Past an optional budget of lines or bytes, lines are counted and dropped (cheaply, without
decoding them), with a note every few seconds and the last lines of each stream kept for the
end. A line longer than its limit is cut once, marked, and the rest of it skipped.

Stopping is not losing: when the consumer is cancelled (Ctrl-C, a timeout), the child gets
SIGTERM and its output is still read, and yielded, until its pipes close or the kill deadline;
then the cancellation goes on. Whatever carries the run's worktree tag (an escaped daemon) is
killed when the process ends.
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

import psutil

from looptui.words import counted

MAX_LINE = 64 * 1024  # a longer line is cut and marked, so one huge line cannot eat memory
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PIPE_GRACE = 0.5  # seconds a finished process's children may keep its pipes open
EXIT_POLL = 0.1
READ_SIZE = 64 * 1024
LINE_QUEUE = 1024  # lines read ahead of the consumer; past that the child waits on its pipe
DROP_REPORT_INTERVAL = 2.0  # seconds between notes while lines are being dropped
DROP_PAUSE = 0.001  # seconds per chunk read while dropping: a flood is slowed, not spun on
START_TIME_TOLERANCE = 0.05  # seconds: start times are read in clock ticks
CUT_MARK = " …[line cut]"
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

    limit: int | None  # lines; None: no limit
    byte_limit: int | None = None  # bytes of the lines kept; None: no limit
    remaining: int = 0
    remaining_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # by stream
    reported_at: float = 0.0

    def __post_init__(self) -> None:
        self.remaining = self.limit or 0
        self.remaining_bytes = self.byte_limit or 0

    @property
    def spent(self) -> bool:
        return (self.limit is not None and self.remaining <= 0) or (
            self.byte_limit is not None and self.remaining_bytes <= 0
        )

    def take(self, size: int = 0) -> bool:
        """Count one line of `size` bytes kept; False when the budget was already spent."""
        if self.spent:
            return False
        self.remaining -= 1
        self.remaining_bytes -= size
        return True

    def describe(self) -> str:
        """What was exceeded, for the note that says lines are being dropped."""
        if self.byte_limit is not None and self.remaining_bytes <= 0:
            return f"{_size(self.byte_limit)} of output"
        return f"{self.limit} lines of output"


_END = Line("", "stdout", note=True)  # the streams are given up on: stop reading them


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
    max_bytes: int | None = None,
) -> AsyncIterator[Line]:
    """Run `argv` and yield its output lines; set `exit_status.code` when it has ended.

    After `max_lines` lines or `max_bytes` bytes (of both streams together), further lines
    are dropped: notes (`Line.note`) count them as it happens, and each stream's last lines
    come at its end. A stdout line longer than `max_line` bytes is cut (stderr's at MAX_LINE).

    Cancelling the iterator stops the process group (SIGTERM, then SIGKILL after TERM_GRACE)
    but keeps yielding what the child prints until its pipes close (or are given up on a
    moment after the kill); then the cancellation is raised. Closing it (aclose) stops the
    group at once, since nothing more can be yielded. Processes tagged with this child's
    WORKTREE_VARIABLE are killed at the end.
    Raises OSError (FileNotFoundError, PermissionError, E2BIG...) when `argv` cannot be run.
    """
    process, cancelled = await _start(argv, cwd, environ, stdin is not None)
    tag = environ.get(WORKTREE_VARIABLE)
    queue: asyncio.Queue[Line | None] = asyncio.Queue(maxsize=LINE_QUEUE)
    budget = _Budget(max_lines, max_bytes)
    stop = asyncio.Event()
    if cancelled is not None:  # cancelled while it started: stopped like any other
        stop.set()
    assert process.stdout is not None and process.stderr is not None
    helpers = [
        asyncio.create_task(_pump(process.stdout, "stdout", queue, budget, max_line)),
        asyncio.create_task(_pump(process.stderr, "stderr", queue, budget, MAX_LINE)),
        asyncio.create_task(_end_process(process, queue, stop, tag)),
    ]
    if stdin is not None:
        helpers.append(asyncio.create_task(_feed(process, stdin)))
    try:
        open_streams = 2
        while open_streams:
            try:
                line = await queue.get()
            except asyncio.CancelledError as exc:
                if cancelled is not None:  # cancelled again while draining: stop now
                    raise
                # What the child prints while it shuts down is part of its output; the
                # cancellation is raised once that is read (see the end of this function).
                cancelled = exc
                stop.set()
                continue
            if line is None:
                open_streams -= 1
            elif line is _END:
                break
            else:
                yield line
        if cancelled is None:
            exit_status.code = await process.wait()
    finally:
        await stop_process_group(process)
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if tag is not None:
            await asyncio.to_thread(kill_orphans, tag)
    if cancelled is not None:
        raise cancelled


async def _start(
    argv: Sequence[str], cwd: Path, environ: Mapping[str, str], with_stdin: bool
) -> tuple[asyncio.subprocess.Process, asyncio.CancelledError | None]:
    """Start `argv` as the leader of a new session, and the cancellation that came meanwhile.

    The child runs before asyncio has finished connecting its pipes, and a cancellation then
    would have asyncio kill the leader alone, leaving whatever it started running. So the
    start is seen through, and the caller stops the whole group."""
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(environ),
            stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    )
    cancelled: asyncio.CancelledError | None = None
    while not spawn.done():
        try:
            await asyncio.wait({spawn})  # unlike awaiting it, leaves `spawn` uncancelled
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None and spawn.exception() is not None:
        raise cancelled  # it never ran: the cancellation is what the caller asked for
    process = spawn.result()  # OSError when `argv` cannot be run
    _live_groups.add(process.pid)
    return process, cancelled


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
    """Kill what is left of a run's agents and checks: every process of this user whose
    environment says it works in `worktree` (WORKTREE_VARIABLE, which agents and checks
    inherit), with its process group, whether its looptui died (kill -9, a crash) or it
    escaped its group (a daemon that called setsid). Returns how many processes were found.

    The variable's value names the run's own worktree, so unrelated processes are never
    touched, and neither is this process nor its ancestors.
    """
    me = psutil.Process()
    spared = {me.pid, *(parent.pid for parent in me.parents())}
    found: list[int] = []
    for candidate in psutil.process_iter(["uids"]):
        if candidate.pid in spared:
            continue
        try:
            uids = candidate.info["uids"]
            if uids is None or uids.real != os.getuid():
                continue
            if candidate.environ().get(WORKTREE_VARIABLE) == worktree:
                found.append(candidate.pid)
        except (psutil.Error, OSError):  # gone meanwhile, or not ours to read
            continue
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


def process_start_time(pid: int | None) -> float | None:
    """When the process `pid` started (seconds since the epoch), or None if there is none.

    With the pid it tells one process from a later one that reuses its id."""
    if not pid:
        return None
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same_process_alive(pid: int | None, started: float | None) -> bool:
    """Whether the process `pid` that started at `started` is still there; without a start
    time (a run recorded by an older looptui), whether any process has this id. A zombie (a
    process that died and that its parent has not reaped yet, for ever under a container's
    init that reaps nothing) is not alive: it drives nothing any more."""
    if started is None:
        return process_alive(pid) and not _zombie(pid)
    now = process_start_time(pid)
    return now is not None and abs(now - started) < START_TIME_TOLERANCE and not _zombie(pid)


def _zombie(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


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
    """Split a stream into lines without StreamReader's line-length limit; `None` ends it.

    A line longer than `max_line` is yielded cut, once, and the rest of it is skipped up to
    its newline: a stream without newlines costs neither memory nor storage."""
    pending = b""
    tail = b""  # the end of what was dropped, for its last lines
    skipping = False  # in the rest of a line that was cut
    try:
        while chunk := await stream.read(READ_SIZE):
            if skipping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    await asyncio.sleep(DROP_PAUSE)
                    continue
                chunk, skipping = chunk[newline + 1 :], False
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
                raw = raw[:max_line]
                if not budget.take(len(raw)):
                    rest = lines[index:]
                    budget.dropped[name] = budget.dropped.get(name, 0) + len(rest)
                    tail = b"\n".join(rest)[-_TAIL_BYTES:] + b"\n"
                    await _report_dropped(budget, name, queue)
                    break
                await queue.put(Line(_decode(raw), name))
            if len(pending) > max_line:
                if budget.take(max_line):
                    await queue.put(Line(_decode(pending[:max_line]) + CUT_MARK, name))
                else:
                    budget.dropped[name] = budget.dropped.get(name, 0) + 1
                    await _report_dropped(budget, name, queue)
                pending, skipping = b"", True
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
            f"[looptui: more than {budget.describe()}; further lines are counted "
            f"but not kept, and the last {KEPT_AT_END} of each stream are shown at its end]"
        )
    elif now - budget.reported_at >= DROP_REPORT_INTERVAL:
        text = f"[looptui: {counted(budget.dropped[name], name + ' line')} dropped so far]"
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
    text = (
        f"[looptui: {counted(count, name + ' line')} dropped in all; the last {len(last)} follow]"
    )
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


async def _end_process(
    process: asyncio.subprocess.Process,
    queue: asyncio.Queue[Line | None],
    stop: asyncio.Event,
    tag: str | None,
) -> None:
    """See the child's end through: SIGTERM it once `stop` is set (SIGKILL after TERM_GRACE);
    once it is gone and its pipes are still open, kill what holds them (its group, then
    anything with its worktree tag, such as a daemon in a session of its own), and if they
    are open even then, give up on them (`_END`).

    The leader's exit is polled: `process.wait()` also waits for the pipes to close.
    """
    while process.returncode is None and not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(EXIT_POLL)
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE
        while process.returncode is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(EXIT_POLL / 4)
    else:  # its children may finish what they were writing; then they go
        await _pipes_closed(process, PIPE_GRACE)
    _signal_group(process.pid, signal.SIGKILL)
    if await _pipes_closed(process, PIPE_GRACE):
        return
    if tag is not None:
        await asyncio.to_thread(kill_orphans, tag)
        if await _pipes_closed(process, PIPE_GRACE):
            return
    await queue.put(_END)


async def _pipes_closed(process: asyncio.subprocess.Process, within: float) -> bool:
    """Whether both output pipes reach their end within `within` seconds; what they held is
    then read by the pumps, in order."""
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + within
    while not (process.stdout.at_eof() and process.stderr.at_eof()):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(EXIT_POLL / 4)
    return True


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MB" if count >= 1024 * 1024 else f"{count} bytes"
