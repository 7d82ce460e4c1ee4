"""The read-only face of the store: what the UI and the reports may ask of it.

`Engine.history` hands out the store typed as `History`, so that a screen can read runs,
events, verdicts and notes but cannot write any (mypy holds it to that).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from looptui.engine.models import CheckResult, Iteration, Note, Run, RunStatus, Verdict
from looptui.engine.store.search import SearchHit
from looptui.protocol.events import Event, EventKind


class History(Protocol):
    async def runs(self, statuses: Iterable[RunStatus] | None = None) -> list[Run]: ...

    async def run(self, run_id: str) -> Run: ...

    async def find_run(self, prefix: str) -> Run: ...

    async def events(
        self,
        run_id: str,
        after_id: int = 0,
        limit: int | None = None,
        kinds: Iterable[EventKind] | None = None,
    ) -> list[Event]: ...

    async def events_since(
        self, after_id: int, run_id: str | None = None, limit: int = 10_000
    ) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    async def events_page(self, run_id: str, after_id: int, count: int) -> list[Event]: ...

    async def search(
        self,
        query: str,
        *,
        loop: str | None = None,
        run: str | None = None,
        limit: int = 50,
    ) -> list[SearchHit]: ...

    async def latest_lines(self, kinds: Iterable[EventKind]) -> dict[str, Event]: ...

    async def iterations(self, run_id: str) -> list[Iteration]: ...

    async def check_results(self, run_id: str) -> list[tuple[int, CheckResult]]: ...

    async def verdicts(self, run_id: str) -> list[tuple[int, Verdict]]: ...

    async def latest_verdicts(self) -> dict[str, tuple[int, Verdict]]: ...

    async def notes(self, run_id: str) -> list[Note]: ...
