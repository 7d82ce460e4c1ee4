"""The clean gate: the checks, once more, on a clean checkout of the commit that would merge.

Checks that pass in a run's worktree prove little on their own: files that git ignores, left
there by the agent (a cache, a build output, a compiled module next to the source), can make
them pass while the commit that would merge is empty or wrong. Before an iteration counts as
done, its checks run again in a checkout that holds the commit and nothing else, prepared the
way CI would prepare it (the loop's `setup` commands).

Clean checkouts are detached worktrees in a pool, claimed one per user at a time (a file lock
each, so concurrent runs and processes never share one) and reset between uses, which costs
the files that differ rather than a new checkout. What `setup` made (a `.venv`, a
`node_modules`) is kept across resets, and `setup` runs again on each use: setup commands are
expected to be cheap when nothing changed, as `uv sync` and `npm ci` with a cache are.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from looptui.engine.checks import run_check
from looptui.engine.config import CheckConfig
from looptui.engine.models import CheckResult
from looptui.engine.workspace import Repository

CLEAN_SUFFIX = " (clean checkout)"  # the name of a check's result in the clean checkout
SETUP_TIMEOUT = 1800.0
BASE_COUNTS = "base-counts.json"  # what the tests counted on each base (see verifier.py)


@dataclass(frozen=True)
class GateResult:
    """The checks run on a clean checkout of `commit`; `setup` holds the setup commands'
    results (a failing one stops the gate before any check)."""

    commit: str
    setup: tuple[CheckResult, ...]
    checks: tuple[CheckResult, ...]
    duration: float

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.setup) and all(r.passed for r in self.checks)

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return self.setup + self.checks


class CleanCheckouts:
    """The repository's pool of clean checkouts, under `root`."""

    def __init__(self, repository: Repository, root: Path) -> None:
        self.repository = repository
        self.root = root

    @contextlib.asynccontextmanager
    async def claim(self, commit: str, setup: Sequence[str] = ()) -> AsyncIterator[Path]:
        """A checkout holding exactly `commit` (plus what `setup` made before), held by the
        caller alone until the block ends."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True, mode=0o700)
        slot, lock = await asyncio.to_thread(self._lock_free_slot)
        try:
            await asyncio.to_thread(self._prepare, slot, commit, tuple(setup))
            yield slot
        finally:
            lock.close()  # releases the flock

    def _lock_free_slot(self) -> tuple[Path, IO[str]]:
        index = 0
        while True:
            slot = self.root / f"clean-{index}"
            handle = open(f"{slot}.lock", "a")  # noqa: SIM115 - held until the claim ends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                index += 1
                continue
            return slot, handle

    def _prepare(self, slot: Path, commit: str, setup: tuple[str, ...]) -> None:
        repository = self.repository
        if not (slot / ".git").exists():
            if slot.exists():  # a half-made slot (a crash while adding): start it again
                repository.remove_worktree(slot)
            repository.create_detached_checkout(slot, commit)
        keep = _kept_entries(slot, setup)
        repository.reset_checkout(slot, commit, keep)

    def remember_setup(self, slot: Path, setup: Sequence[str]) -> None:
        """Record what `setup` made in `slot`, to keep across resets (after a setup that
        passed on a slot that held nothing else)."""
        entries = sorted(
            {
                entry.rstrip("/").split("/", 1)[0]
                for entry in self.repository.untracked_entries(slot)
            }
        )
        marker = _marker(slot)
        marker.write_text(json.dumps({"setup": _fingerprint(setup), "keep": entries}))

    def remove_all(self) -> None:
        """Remove every clean checkout and the pool's own files (for tests and benchmarks
        that clean up)."""
        for slot in sorted(self.root.glob("clean-*")):
            if slot.is_dir():
                self.repository.remove_worktree(slot)
            elif slot.suffix in (".lock", ".setup"):
                slot.unlink(missing_ok=True)
        (self.root / BASE_COUNTS).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()


async def run_gate(
    pool: CleanCheckouts,
    slot: Path,
    commit: str,
    checks: Sequence[CheckConfig],
    setup: Sequence[str],
    environ: Mapping[str, str],
) -> GateResult:
    """Run `setup`, then `checks`, in `slot` (claimed from `pool` for `commit`)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    fresh = not _marker(slot).exists()
    setup_results: list[CheckResult] = []
    for index, command in enumerate(setup, 1):
        config = CheckConfig(name=f"setup {index}", run=command, timeout=SETUP_TIMEOUT)
        result = await run_check(config, slot, environ)
        setup_results.append(result)
        if not result.passed:
            return GateResult(commit, tuple(setup_results), (), loop.time() - started)
    if setup and fresh:
        await asyncio.to_thread(pool.remember_setup, slot, setup)
    results = []
    for check in checks:
        result = await run_check(check, slot, environ)
        results.append(_renamed(result))
    return GateResult(commit, tuple(setup_results), tuple(results), loop.time() - started)


def _renamed(result: CheckResult) -> CheckResult:
    return CheckResult(
        name=result.name + CLEAN_SUFFIX,
        command=result.command,
        exit_code=result.exit_code,
        duration=result.duration,
        output=result.output,
        timed_out=result.timed_out,
    )


def _marker(slot: Path) -> Path:
    return slot.with_name(slot.name + ".setup")


def _fingerprint(setup: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(setup)).encode()).hexdigest()


def _kept_entries(slot: Path, setup: tuple[str, ...]) -> list[str]:
    """The entries a setup made in `slot` before, if it was the same setup; else nothing,
    and the record is dropped so that the next setup is recorded afresh."""
    marker = _marker(slot)
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return []
    if not setup or data.get("setup") != _fingerprint(setup):
        with contextlib.suppress(OSError):
            os.unlink(marker)
        return []
    return [name for name in data.get("keep", []) if isinstance(name, str) and name != ".git"]
