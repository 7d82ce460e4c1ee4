"""Deferred runs continued at their usage limit's reset, by the service.

A run that a usage limit stopped is parked as `deferred` with the reset as its `retry_at`
(see `engine/runner.py`). While the service runs, this waits for each such run's time on a
`Clock` (the wall clock; a fake one in tests) and then resumes it with `Engine.resume`, in its
worktree and from its agent's session. It finds the runs deferred before it started in the
store, and those deferred later in the engine's feed (a StatusChanged to deferred), so a run
is never left parked while a service is up. Without a service, a deferred run waits for
`looptui resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.store.feed import Feed
from looptui.engine.supervisor import Engine
from looptui.engine.triggers.clock import Clock
from looptui.protocol.events import ErrorReported, StatusChanged

logger = logging.getLogger(__name__)


class Deferrals:
    """Resumes the engine's deferred runs when their limits reset, until stopped."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._waiting: dict[str, asyncio.Task[None]] = {}  # run id → its wait and resume
        self._feed: Feed | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Wait for the deferred runs in the store, and watch for runs deferred from now on."""
        # the feed first, from the newest event: a run deferred while the store is read is
        # seen in one or the other (twice is harmless: a run has one wait at a time)
        after = await self.engine.history.last_event_id()
        self._feed = self.engine.subscribe(None, after=after)
        for run in await self.engine.history.runs([RunStatus.DEFERRED]):
            self._wait_for(run.id, run.retry_at)
        self._watcher = asyncio.create_task(self._watch(self._feed), name="deferrals")

    async def stop(self) -> None:
        """Stop waiting; the runs stay deferred, for the next service to resume."""
        if self._feed is not None:
            self._feed.close()
        tasks = [*self._waiting.values(), *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._waiting.clear()

    def waiting(self) -> set[str]:
        """The ids of the runs waited for now."""
        return {run_id for run_id, task in self._waiting.items() if not task.done()}

    async def _watch(self, feed: Feed) -> None:
        async for batch in feed:
            for event in batch:
                payload = event.payload
                if isinstance(payload, StatusChanged) and payload.status is RunStatus.DEFERRED:
                    retry_at = payload.retry_at
                    if retry_at is None:  # an event without it: the record has it
                        with contextlib.suppress(LooptuiError):
                            retry_at = (await self.engine.history.run(event.run_id)).retry_at
                    self._wait_for(event.run_id, retry_at)

    def _wait_for(self, run_id: str, retry_at: float | None) -> None:
        """Resume `run_id` at `retry_at` (at once when it has none): a newer deferral of the
        same run replaces the wait for the older one."""
        earlier = self._waiting.pop(run_id, None)
        if earlier is not None and not earlier.done():
            earlier.cancel()
        when = self.clock.now() if retry_at is None else retry_at
        self._waiting[run_id] = asyncio.create_task(
            self._resume_at(run_id, when), name=f"deferred-{run_id}"
        )

    async def _resume_at(self, run_id: str, when: float) -> None:
        await self.clock.sleep_until(when)
        try:
            run = await self.engine.history.run(run_id)
            if run.status is not RunStatus.DEFERRED:  # resumed or discarded by hand meanwhile
                return
            await self.engine.resume(run_id)
            logger.info("run %s resumed after its usage limit reset", run_id)
        except LooptuiError as exc:  # its loop or agent is gone from the config, say
            message = f"not resumed after its usage limit reset: {exc}"
            self.engine.store.emit(run_id, ErrorReported(message))
            logger.warning("run %s %s", run_id, message)
        except Exception:  # a bug: logged, the other runs' waits go on
            logger.exception("run %s could not be resumed after its usage limit", run_id)
        finally:
            if self._waiting.get(run_id) is asyncio.current_task():
                del self._waiting[run_id]
