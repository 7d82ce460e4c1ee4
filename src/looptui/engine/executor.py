"""The executor seam: where a run, once prepared, actually executes.

The supervisor builds a `LoopRunner` (the run's loop, agent, verifier, worktree) and hands it
to an executor, which drives it to a final status and lets it be waited for or stopped. Today
the only executor runs each run as an asyncio task in this process, at most `max_parallel` at
once (`LocalExecutor`). An executor for a cluster would take the same calls and drive the
runner on another machine (see docs/cluster-executor.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from looptui.engine.errors import LooptuiError
from looptui.engine.models import RunStatus
from looptui.engine.runner import LoopRunner
from looptui.engine.store import Store
from looptui.protocol.events import StatusChanged


class Executor(Protocol):
    """Drives prepared runs; every outcome is in the store, whichever machine ran it."""

    def submit(self, runner: LoopRunner) -> None:
        """Start driving `runner` (queued until a slot is free); returns at once."""

    async def wait(self, run_id: str) -> None:
        """Return once the run is no longer driven here (finished, stopped or never was)."""

    async def stop(
        self, run_id: str, status: RunStatus = RunStatus.CANCELLED, reason: str | None = None
    ) -> None:
        """Stop the run; it is recorded as `status` (cancelled, or interrupted when the
        service itself stops and the run is to resume with the next one), with `reason` as
        its error when given."""

    def active(self) -> list[str]:
        """The ids of the runs being driven (queued or running) now."""

    async def close(self, status: RunStatus = RunStatus.CANCELLED) -> None:
        """Stop every run (recorded as `status`)."""


class LocalExecutor:
    """Runs as asyncio tasks of this process, `max_parallel` at a time; their agents and
    checks are this process's children (each in its own process group)."""

    def __init__(self, store: Store, max_parallel: int) -> None:
        self.store = store
        self._slots = asyncio.Semaphore(max_parallel)
        self._tasks: dict[str, asyncio.Task[RunStatus]] = {}
        self._runners: dict[str, LoopRunner] = {}

    def submit(self, runner: LoopRunner) -> None:
        task = self._tasks.get(runner.run_id)
        if task is not None and not task.done():  # two drivers in one worktree: never
            raise LooptuiError(f"run {runner.run_id} is already going")
        self._runners[runner.run_id] = runner
        self._tasks[runner.run_id] = asyncio.create_task(
            self._drive(runner), name=f"run-{runner.run_id}"
        )

    async def _drive(self, runner: LoopRunner) -> RunStatus:
        try:
            await self.store.claim_run(runner.run_id)  # this process drives it from now on
            async with self._slots:
                return await runner.drive()
        except asyncio.CancelledError:
            await self._end_if_queued(runner.run_id, runner.cancel_status, runner.cancel_reason)
            raise

    async def _end_if_queued(
        self, run_id: str, status: RunStatus, reason: str | None = None
    ) -> None:
        """Record a run stopped while queued, or before its task ever ran (a task cancelled
        before its first step never enters `_drive`)."""
        run = await self.store.run(run_id)
        if run.status is RunStatus.QUEUED:
            error = reason or (
                "cancelled" if status is RunStatus.CANCELLED else "the looptui service stopped"
            )
            await self.store.update_run(run.id, status=status, finished_at=time.time(), error=error)
            self.store.emit(run.id, StatusChanged(status, error))
            await self.store.flush()

    async def wait(self, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            # not gather: a waiter that is cancelled (a client that detached) must not
            # cancel the run it waited for
            await asyncio.wait({task})

    async def stop(
        self, run_id: str, status: RunStatus = RunStatus.CANCELLED, reason: str | None = None
    ) -> None:
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            self._runners[run_id].cancel_status = status
            self._runners[run_id].cancel_reason = reason
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self._end_if_queued(run_id, status, reason)

    def active(self) -> list[str]:
        return [run_id for run_id, task in self._tasks.items() if not task.done()]

    async def close(self, status: RunStatus = RunStatus.CANCELLED) -> None:
        for run_id, task in self._tasks.items():
            self._runners[run_id].cancel_status = status
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for run_id in self._tasks:
            await self._end_if_queued(run_id, status)
