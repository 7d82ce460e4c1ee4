"""Waiting for a process to end, any process (not only our children), as an event.

"Ended" means every thread of it has exited, which is what a pidfd reports. A process's main
thread shows as a zombie as soon as it has exited, while the others may still be tearing the
process down; the descriptors they share (a listening socket, a lock) are closed only by the
last of them, so a zombie main thread does not mean that what the process held is gone."""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for_exit(pid: int, within: float) -> bool:
    """Whether `pid` ends within `within` seconds (a zombie counts as ended once all its
    threads have exited). Awaited on a pidfd, which becomes readable then: no polling."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone (and reaped)
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(descriptor, lambda: ended.done() or ended.set_result(None))
    try:
        await asyncio.wait_for(ended, within)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(descriptor)
        os.close(descriptor)


def exited(pid: int, within: float = 0.0) -> bool:
    """`wait_for_exit` for code outside an event loop: whether `pid` ends within `within`
    seconds (at once, by default), blocking on its pidfd meanwhile."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(within * 1000))
    finally:
        os.close(descriptor)


def wait_for(condition: Callable[[], T | None], what: str, timeout: float) -> T:
    """The first truthy value of `condition`, looked at every 20 ms until `timeout`; fails
    naming `what`. For state another process changes (a file, the store, a process table),
    which no event announces to this one."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
