"""Turning the store's rows back into the engine's records."""

from __future__ import annotations

import json
import sqlite3

from looptui.engine.models import (
    DiffStat,
    ReviewTally,
    Run,
    RunStatus,
    Verdict,
    flags_from_data,
)
from looptui.protocol.events import Event, decode_payload


def event_from_row(row: sqlite3.Row) -> Event:
    return Event(
        run_id=row["run_id"],
        payload=decode_payload(row["kind"], row["data"]),
        iteration=row["iteration"],
        ts=row["ts"],
        id=row["id"],
    )


def verdict_from_row(row: sqlite3.Row) -> Verdict:
    return Verdict(
        done=bool(row["done"]),
        evaluator=row["evaluator"],
        confidence=row["confidence"],
        reasons=tuple(json.loads(row["reasons"])),
        next_steps=tuple(json.loads(row["next_steps"])),
        unknown=bool(row["unknown"]),
        flags=flags_from_data(json.loads(row["flags"])),
    )


def run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        loop=row["loop"],
        agent=row["agent"],
        status=RunStatus(row["status"]),
        prompt=row["prompt"],
        base_branch=row["base_branch"],
        base_commit=row["base_commit"],
        branch=row["branch"],
        worktree=row["worktree"],
        max_iterations=row["max_iterations"],
        iterations=row["iterations"],
        head_commit=row["head_commit"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        owner_pid=row["owner_pid"],
        diff=DiffStat(row["diff_files"], row["diff_added"], row["diff_removed"]),
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=row["cost_usd"],
        resume_token=row["resume_token"],
        resumes=row["resumes"],
        retry_at=row["retry_at"],
        review=review_from_text(row["review"]),
        worked=row["worked"] or 0.0,
        working_since=row["working_since"],
    )


def review_from_text(text: str | None) -> ReviewTally | None:
    """A merged run's `ReviewTally` from its JSON column (NULL: never merged through review
    or merged before looptui kept it); fields it does not know are ignored."""
    if not text:
        return None
    data = json.loads(text)
    known = ReviewTally.__dataclass_fields__
    return ReviewTally(**{name: int(value) for name, value in data.items() if name in known})
