"""Where the memory is written: a finished run's lessons, the lessons of a review's rejected
changes, and the notes a prompt used. Best effort: a failure here is logged and never fails
the run or the merge it follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from looptui.engine.config import LoopConfig
from looptui.engine.memory.lessons import RunEvidence, distill, rejected_lessons
from looptui.engine.memory.recall import CANDIDATES, choose
from looptui.engine.models import CheckResult, Note, NoteStatus, Run, RunStatus
from looptui.engine.store import Store
from looptui.engine.workspace import Repository
from looptui.engine.workspace.git_diff import PatchParseError, parse_patch
from looptui.protocol.events import NoteAdded

logger = logging.getLogger(__name__)

# the ends a run's lessons are distilled at (paused, deferred and interrupted runs go on)
ENDED = (
    RunStatus.SUCCEEDED,
    RunStatus.UNCHANGED,
    RunStatus.FAILED,
    RunStatus.STALLED,
    RunStatus.CANCELLED,
)


def lesson_status(loop: LoopConfig) -> NoteStatus | None:
    """How the loop's lessons are kept: proposed to the human, accepted at once, or none."""
    return {"propose": NoteStatus.PROPOSED, "auto": NoteStatus.ACCEPTED}.get(loop.lessons)


async def remembered(
    store: Store, loop: LoopConfig, run_id: str, failing: Sequence[CheckResult]
) -> list[Note]:
    """The accepted notes of earlier runs an iteration's prompt carries, counted as used."""
    notes = await store.memory(loop=loop.name, statuses=[NoteStatus.ACCEPTED], limit=CANDIDATES)
    chosen = choose(notes, run_id, failing)
    await store.note_used(note.id for note in chosen if note.id is not None)
    return chosen


async def keep(store: Store, run: Run, notes: Sequence[Note]) -> list[Note]:
    """Store lessons (a lesson already known for the loop is counted, not repeated); the
    new ones are said in the run's log. Returns the new ones, as stored."""
    new = []
    for note in notes:
        note_id, fresh = await store.propose_lesson(note)
        if fresh:
            new.append(await store.note(note_id))
            store.emit(run.id, NoteAdded(note.kind, note.text), note.iteration)
    return new


async def remember_run(
    store: Store, repository: Repository, run_id: str, loop: LoopConfig, ended: RunStatus
) -> list[Note]:
    """Distil the lessons of a run that ended (`ended`: how), and keep them."""
    status = lesson_status(loop)
    if status is None:
        return []
    try:
        run = replace(await store.run(run_id), status=ended)
        iterations = await store.iterations(run_id)
        # what each turn changed, from the tree before it to the tree after it: whoever
        # committed (looptui, or the agent itself)
        changed: dict[int, Sequence[str]] = {}
        before = await asyncio.to_thread(_tree_of, repository, run.base_commit)
        for iteration in iterations:
            if iteration.tree and before and iteration.tree != before:
                changed[iteration.number] = await asyncio.to_thread(
                    _changed_between, repository, before, iteration.tree
                )
            before = iteration.tree or before
        evidence = RunEvidence(
            run=run,
            iterations=iterations,
            checks=await store.check_results(run_id),
            verdicts=await store.verdicts(run_id),
            notes=await store.notes(run_id),
            changed=changed,
        )
        return await keep(store, run, distill(evidence, status))
    except Exception:
        logger.exception("the lessons of run %s could not be distilled", run_id)
        return []


async def remember_rejected(
    store: Store, run: Run, rejected_patch: str, loop: LoopConfig | None
) -> list[Note]:
    """Lessons from the changes the human rejected when merging `run`."""
    status = lesson_status(loop) if loop is not None else NoteStatus.PROPOSED
    if status is None or not rejected_patch.strip():
        return []
    try:
        patch = parse_patch(rejected_patch)
    except PatchParseError:
        logger.warning("the rejected changes of run %s could not be read", run.id)
        return []
    try:
        return await keep(store, run, rejected_lessons(run, patch, status))
    except Exception:
        logger.exception("the lessons of run %s's review could not be kept", run.id)
        return []


def _tree_of(repository: Repository, commit: str) -> str | None:
    try:
        return repository.tree_of(commit)
    except Exception:  # gone (the run's base was rewritten): no paths to name
        return None


def _changed_between(repository: Repository, before: str, after: str) -> list[str]:
    try:
        return repository.changed_paths(before, after)
    except Exception:  # a tree gone: no paths to name
        return []
