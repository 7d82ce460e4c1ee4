"""A warm pool of worktrees: a run's checkout made before anyone asks for it.

Almost all of a run's start is git writing the base's files into a new worktree (450 ms for
10,000 files, bench/RESULTS.md). The pool does that work ahead of time. For each base branch
it keeps `size` worktrees ("slots", `<worktrees dir>/pool/slot-<n>`) checked out on a
detached HEAD at the branch's tip. A run that starts at that tip takes one: a branch is created
in it and it is renamed to the run's path, and no file is written.

A slot is handed out only when it holds exactly the run's base commit, that commit is still
its branch's tip, and the slot holds nothing else (`git status --porcelain --ignored` is
empty). Anything written into a slot since it was made (by hand, by a stray process) would
otherwise reach the run unseen, in its diff or in its checks. A slot behind its branch is
moved to the new tip, which rewrites only the files that changed. A slot that cannot be moved,
or is dirty, is removed and made again. Whenever the pool cannot serve a claim it answers
False, and the caller checks out a worktree the usual way.

Slots never outlive the pool: `close` removes them, and the first `fill` after a crash
adopts the slots it left (checking them like any stale slot) or removes them. One process
uses the pool (the service), so an asyncio lock is enough to keep two claims off one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from looptui.engine.errors import LooptuiError, WorkspaceError
from looptui.engine.workspace.locations import ensure_directory
from looptui.engine.workspace.repository import Repository

logger = logging.getLogger(__name__)

SLOT_PREFIX = "slot-"
# Git trusts a file's cached stat only if the file is older than the index that records it.
# Every file of a new checkout is as new as its index, so until the index is written again
# a second later, each `git status` hashes all of them again: 100 ms instead of 30 ms on
# 10,000 files (bench/RESULTS.md). A fill therefore checks its new slots once more after
# this long, which rewrites their indexes.
SETTLE_AFTER = 1.1
T = TypeVar("T")


@dataclass(eq=False)  # a slot is itself, not its fields
class _Slot:
    path: Path
    commit: str | None  # what it holds; None: a slot a crash left, not checked yet


class WorktreePool:
    """Up to `size` prepared worktrees per base branch, under `root` (by default the
    repository's `<worktrees dir>/pool`)."""

    def __init__(
        self,
        repository: Repository,
        size: int,
        root: Path | None = None,
        settle_after: float = SETTLE_AFTER,
    ) -> None:
        self.repository = repository
        self.size = size
        self.root = root or repository.worktrees_dir / "pool"
        self.settle_after = settle_after
        self._ready: dict[str, list[_Slot]] = {}
        self._wanted: set[str] = set()  # bases someone filled: only those refill after a claim
        self._lock = asyncio.Lock()
        self._fills: dict[str, asyncio.Task[None]] = {}
        self._jobs: set[asyncio.Future[Any]] = set()  # git work in threads, never abandoned
        self._adopted = False
        self._next = 0
        self._closed = False

    def ready(self, base_branch: str) -> list[Path]:
        """The slots ready for runs on `base_branch` now."""
        return [slot.path for slot in self._ready.get(base_branch, [])]

    async def fill(self, base_branch: str) -> None:
        """Bring `base_branch`'s slots up to `size`, all at its tip. Slots behind it are moved
        to it (or made again) and missing ones are made. Raises LooptuiError when git cannot
        (a base branch that does not exist, say)."""
        await self._fill_task(base_branch)

    def refill(self, base_branch: str) -> None:
        """`fill` in the background; a failure is logged (a claim without a slot falls back)."""
        if not self._closed:
            self._fill_task(base_branch)

    async def claim(self, base_branch: str, commit: str, branch: str, path: Path) -> bool:
        """Give a slot to a run: True when a slot holding `commit` (still the tip of
        `base_branch`) and nothing else is now the worktree at `path`, on the new `branch`
        at `commit`. False when there was none, and the caller makes the worktree itself."""
        if self._closed:
            return False
        try:
            return await self._claim(base_branch, commit, branch, path)
        finally:
            if base_branch in self._wanted:
                self.refill(base_branch)

    async def close(self) -> None:
        """Stop filling and remove every slot, so that nothing is left behind."""
        self._closed = True
        for task in self._fills.values():
            task.cancel()
        await asyncio.gather(*self._fills.values(), return_exceptions=True)
        await asyncio.gather(*self._jobs, return_exceptions=True)  # a thread's git, to its end
        self._ready.clear()
        await asyncio.to_thread(self._remove_all)

    # -- claiming --------------------------------------------------------------------------

    async def _claim(self, base_branch: str, commit: str, branch: str, path: Path) -> bool:
        if not self._ready.get(base_branch):  # nothing to check against the tip
            return False
        try:
            tip = await self._thread(self.repository.branch_commit, base_branch)
        except WorkspaceError:
            return False
        if tip != commit:  # the run starts behind the tip: no slot is meant for it
            return False
        while True:
            async with self._lock:
                slots = self._ready.get(base_branch, [])
                if not slots:
                    return False
                # one already at the commit if there is one, else one to move there
                slot = next((s for s in slots if s.commit == commit), slots[0])
                slots.remove(slot)
            if await self._thread(self._take, slot, commit, branch, path):
                return True

    def _take(self, slot: _Slot, commit: str, branch: str, path: Path) -> bool:
        """Make `slot` the run's worktree at `path`, or remove it and say False."""
        repository = self.repository
        try:
            if slot.commit != commit:
                repository.detach_checkout(slot.path, commit)
            head, clean = repository.checkout_state(slot.path)
            if head != commit or not clean:
                logger.info("pool slot %s is not clean at %s; removed", slot.path, commit[:12])
                self._remove(slot.path)
                return False
            # the branch before the move: a crash between the two leaves a slot on a branch
            # (the next start adopts it, detached again), never a run's worktree with none
            repository.start_branch(slot.path, branch, commit)
        except WorkspaceError as exc:
            logger.info("pool slot %s cannot be used (%s); removed", slot.path, exc)
            self._remove(slot.path)
            return False
        try:
            repository.move_worktree(slot.path, path)
        except WorkspaceError as exc:
            logger.warning("pool slot %s could not move to %s (%s)", slot.path, path, exc)
            self._remove(slot.path)
            with contextlib.suppress(WorkspaceError):
                repository.delete_branch(branch)
            return False
        return True

    # -- filling ---------------------------------------------------------------------------

    def _fill_task(self, base_branch: str) -> asyncio.Task[None]:
        """The fill of `base_branch` going on now, or a new one: one per base at a time."""
        task = self._fills.get(base_branch)
        if task is None or task.done():
            self._wanted.add(base_branch)
            task = asyncio.create_task(self._fill(base_branch), name=f"pool-fill-{base_branch}")
            task.add_done_callback(_report)
            self._fills[base_branch] = task
        return task

    async def _fill(self, base_branch: str) -> None:
        if self._closed:
            return
        if not self._adopted:
            self._adopted = True
            leftovers = await self._thread(self._leftovers)
            self._ready.setdefault(base_branch, []).extend(_Slot(p, None) for p in leftovers)
        while not self._closed:
            tip = await self._thread(self.repository.branch_commit, base_branch)
            await self._refresh_stale(base_branch, tip)
            made = []
            while not self._closed and len(self._ready.get(base_branch, [])) < self.size:
                slot = _Slot(self._new_path(), tip)
                await self._thread(self._make, slot.path, tip)
                self._ready.setdefault(base_branch, []).append(slot)
                made.append(slot)
            await self._trim(base_branch)
            if made:
                await asyncio.sleep(self.settle_after)  # see SETTLE_AFTER
                await self._settle(base_branch, made)
            # the base moved while slots were made at its old tip: go round again
            if await self._thread(self.repository.branch_commit, base_branch) == tip:
                return

    async def _refresh_stale(self, base_branch: str, tip: str) -> None:
        async with self._lock:  # taken out of the ready list: no claim sees them meanwhile
            slots = self._ready.setdefault(base_branch, [])
            stale = [slot for slot in slots if slot.commit != tip]
            slots[:] = [slot for slot in slots if slot.commit == tip]
        for slot in stale:
            if not self._closed and await self._thread(self._refresh, slot.path, tip):
                self._ready[base_branch].append(_Slot(slot.path, tip))

    async def _settle(self, base_branch: str, made: list[_Slot]) -> None:
        """Check the slots just `made` once more: it rewrites their indexes (see
        SETTLE_AFTER), and one that something wrote into meanwhile is removed."""
        for slot in made:
            async with self._lock:  # out of the ready list while git works in it
                slots = self._ready.get(base_branch, [])
                if slot not in slots or slot.commit is None:  # claimed or trimmed already
                    continue
                slots.remove(slot)
            if await self._thread(self._refresh, slot.path, slot.commit):
                self._ready[base_branch].append(slot)

    async def _trim(self, base_branch: str) -> None:
        """Remove slots beyond `size` (the setting was lowered)."""
        slots = self._ready.get(base_branch, [])
        while len(slots) > self.size:
            await self._thread(self._remove, slots.pop().path)

    def _refresh(self, path: Path, tip: str) -> bool:
        """Move the slot at `path` to `tip`; remove it when that fails or leaves it unclean."""
        try:
            self.repository.detach_checkout(path, tip)
            head, clean = self.repository.checkout_state(path)
        except WorkspaceError:
            head, clean = "", False
        if head == tip and clean:
            return True
        logger.info("pool slot %s could not be brought clean to %s; removed", path, tip[:12])
        self._remove(path)
        return False

    def _make(self, path: Path, commit: str) -> None:
        ensure_directory(self.root)
        self.repository.create_detached_checkout(path, commit)

    def _new_path(self) -> Path:
        known = {slot.path for slots in self._ready.values() for slot in slots}
        while True:
            path = self.root / f"{SLOT_PREFIX}{self._next}"
            self._next += 1
            if path not in known and not path.exists():
                return path

    def _leftovers(self) -> list[Path]:
        """Slots an earlier process left (it crashed): worktrees are kept, to be checked
        like stale slots; anything else in the pool's directory is removed."""
        if not self.root.is_dir():
            return []
        self.repository.prune_worktrees()
        kept = []
        for entry in sorted(self.root.iterdir()):
            number = entry.name.removeprefix(SLOT_PREFIX)
            if number.isdigit():
                self._next = max(self._next, int(number) + 1)
            if entry.is_dir() and self.repository.is_worktree(entry):
                kept.append(entry)
            else:
                self._remove(entry)
        return kept

    # -- removing --------------------------------------------------------------------------

    def _remove(self, path: Path) -> None:
        try:
            if path.is_dir() and not path.is_symlink():
                self.repository.remove_worktree(path)
            else:
                path.unlink(missing_ok=True)
        except (OSError, WorkspaceError) as exc:
            logger.warning("could not remove pool slot %s: %s", path, exc)

    def _remove_all(self) -> None:
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                self._remove(entry)
            with contextlib.suppress(OSError):
                self.root.rmdir()
        with contextlib.suppress(WorkspaceError):
            self.repository.prune_worktrees()

    async def _thread(self, function: Callable[..., T], *args: object) -> T:
        """`function` in a thread. A cancelled caller stops waiting, but the git work goes on
        to its end, and `close` waits for it before removing slots under it."""
        job: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(function, *args))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return await asyncio.shield(job)


def _report(task: asyncio.Task[None]) -> None:
    """Log a background fill's failure: the pool serves fewer claims, nothing else breaks."""
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, LooptuiError):
        logger.warning("the worktree pool could not fill: %s", exc)
    elif exc is not None:
        logger.error("the worktree pool failed", exc_info=exc)
