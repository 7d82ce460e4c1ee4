"""The review's queries: the decisions taken on a run's diff, and how much of it review
covered once it merged (see `Selection.to_data` and `ReviewTally`)."""

from __future__ import annotations

import abc
import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from looptui.engine.models import ReviewTally
from looptui.engine.store.database import StoreError
from looptui.engine.workspace.selection import KeptDecision

_decisions = msgspec.json.Decoder(list[KeptDecision])


class ReviewRecords(abc.ABC):
    """Review decisions, written by `looptui review` and the TUI, read back by merges."""

    @abc.abstractmethod
    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    @abc.abstractmethod
    async def _write(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, int]:
        """One statement in its own write transaction: (lastrowid, rowcount)."""

    async def save_review_decisions(self, run_id: str, decisions: Sequence[KeptDecision]) -> None:
        """Keep the decisions on `run_id`'s diff (`Selection.to_data()`), replacing any."""
        await self._write(
            "INSERT INTO review_decisions (run_id, decisions, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET decisions = excluded.decisions, "
            "updated_at = excluded.updated_at",
            (run_id, msgspec.json.encode(list(decisions)).decode(), time.time()),
        )

    async def review_decisions(self, run_id: str) -> list[KeptDecision]:
        """The decisions kept on `run_id`'s diff; [] when none were."""
        rows = await self._fetchall(
            "SELECT decisions FROM review_decisions WHERE run_id = ?", (run_id,)
        )
        if not rows:
            return []
        try:
            return _decisions.decode(rows[0]["decisions"])
        except msgspec.DecodeError as exc:  # not ours: say so rather than drop them
            raise StoreError(
                f"the review decisions kept for run {run_id} are unreadable: {exc}"
            ) from None

    async def record_review(self, run_id: str, tally: ReviewTally) -> None:
        """Keep how much of `run_id` review covered, as it merged."""
        await self._write(
            "UPDATE runs SET review = ? WHERE id = ?",
            (json.dumps(dataclasses.asdict(tally)), run_id),
        )
