"""What looptui itself wrote into the user's checkout (a merge updates its files), so that a
`watch` trigger does not fire on looptui's own work.

A write is remembered as the file's state just after it (size and modification time, or
gone). A path counts as looptui's own only while the file is still in that state: an edit by
anyone afterwards changes it, and then it is a change like any other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

KEEP_FOR = 600.0  # seconds a remembered write is kept: long past any watcher's debounce
_GONE = (-1, -1)


class OwnWrites:
    """The files looptui wrote in one checkout, by repository-relative path."""

    def __init__(self) -> None:
        self._written: dict[str, tuple[tuple[int, int], float]] = {}

    def record(self, root: Path, paths: Iterable[str]) -> None:
        """Remember the state of `paths` (relative to `root`) as looptui left them."""
        now = time.monotonic()
        for path in paths:
            self._written[path] = (_state(root / path), now)
        self._forget_old(now)

    def is_own(self, root: Path, path: str) -> bool:
        """Whether `path` is still exactly as looptui wrote it."""
        entry = self._written.get(path)
        if entry is None:
            return False
        state, at = entry
        if time.monotonic() - at > KEEP_FOR:
            del self._written[path]
            return False
        return _state(root / path) == state

    def _forget_old(self, now: float) -> None:
        for path in [p for p, (_, at) in self._written.items() if now - at > KEEP_FOR]:
            del self._written[path]


def _state(path: Path) -> tuple[int, int]:
    try:
        stat = os.lstat(path)
    except OSError:
        return _GONE
    return (stat.st_size, stat.st_mtime_ns)
