"""Lessons distilled from a run: what its evidence says later runs should know.

Each lesson comes from the run's own records: a check that failed (and what made it pass,
or that nothing did), the evaluator's reasons for refusing "done", the tamper guard's flags,
the human's review comments, and the changes the human rejected at merge. It says what
happened, names its sources, and carries a `key` (its subject) so that the same lesson met
in a later run is counted into the first (`seen`), not proposed again. No model invents a
lesson here: a lesson states only what the records show.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from looptui.engine.evaluation import ChecksEvaluator
from looptui.engine.memory.checkpoint import failure_line
from looptui.engine.models import (
    CheckResult,
    Iteration,
    Note,
    NoteKind,
    NoteStatus,
    Run,
    Source,
    Verdict,
)
from looptui.engine.workspace.patch import LineKind, Patch
from looptui.words import counted

MAX_LESSONS = 8  # from one run
# text, key, sources, iteration: how a rule hands `distill` a lesson
LessonSink = Callable[[str, str, list["Source"], int], None]
_VOLATILE = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{7,40}\b|\d+(\.\d+)?|/tmp/\S+|\s+", re.IGNORECASE)


@dataclass(frozen=True)
class RunEvidence:
    """What a finished run recorded, as the store holds it."""

    run: Run
    iterations: Sequence[Iteration]
    checks: Sequence[tuple[int, CheckResult]]
    verdicts: Sequence[tuple[int, Verdict]]
    notes: Sequence[Note]
    changed: dict[int, Sequence[str]]  # iteration -> the paths its commit changed


def subject(*parts: str) -> str:
    """A lesson's key: its parts with what changes from run to run (numbers, hashes,
    temporary paths, spacing) taken out, hashed."""
    text = "\x1f".join(_VOLATILE.sub(" ", part.lower()).strip() for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def distill(evidence: RunEvidence, status: NoteStatus) -> list[Note]:
    """The lessons of a finished run, as notes of `status` (proposed, or accepted when the
    loop says `lessons = "auto"`), most telling first."""
    run = evidence.run
    lessons: list[Note] = []

    def lesson(text: str, key: str, sources: list[Source], iteration: int) -> None:
        if any(known.key == key for known in lessons):
            return
        lessons.append(
            Note(
                run.id,
                iteration,
                NoteKind.LESSON,
                text,
                time.time(),
                loop=run.loop,
                status=status,
                sources=(Source("run", run.id, None, f"{run.status}"), *sources),
                key=key,
            )
        )

    for flag_iteration, verdict in evidence.verdicts:  # gaming is the first thing to say
        for flag in verdict.flags:
            lesson(
                f"The tamper guard flagged {flag.rule} at {flag.where}: {flag.message[:200]}. "
                "Reach the goal by fixing the code, not by changing tests or protected files.",
                subject("tamper", flag.rule, flag.path),
                [Source("tamper", run.id, flag_iteration, str(flag)[:200])],
                flag_iteration,
            )
    _check_lessons(evidence, lesson)
    for number, verdict in evidence.verdicts:
        refused = not verdict.done and not verdict.unknown and not verdict.flags
        if not refused or verdict.evaluator == ChecksEvaluator.name:
            continue  # the checks' own verdict says nothing the check lessons do not
        for reason in verdict.reasons[:2]:
            lesson(
                f"The evaluator ({verdict.evaluator}) did not accept the work as done: "
                f"{reason[:300]}",
                subject("evaluator", reason[:120]),
                [Source("verdict", run.id, number, reason[:200])],
                number,
            )
    for note in evidence.notes:
        if note.kind is NoteKind.FEEDBACK:
            lesson(
                f"The reviewer asked for changes: {note.text[:400]}",
                subject("feedback", note.text[:160]),
                [Source("feedback", run.id, note.iteration, note.text[:200])],
                note.iteration,
            )
    if str(run.status) == "stalled" and evidence.iterations:
        last = evidence.iterations[-1]
        said = last.agent_message.strip().splitlines()[-1:] or [""]
        lesson(
            f"A run stalled: its iterations changed nothing in the end (the agent's last "
            f"words: {said[0][:200]!r}). Try a different approach, or split the goal.",
            subject("stalled", run.loop),
            [Source("iteration", run.id, last.number, "no change to the diff")],
            last.number,
        )
    return lessons[:MAX_LESSONS]


def _check_lessons(evidence: RunEvidence, lesson: LessonSink) -> None:
    """A check that failed, and what made it pass, or that nothing did."""
    run = evidence.run
    by_name: dict[str, list[tuple[int, CheckResult]]] = {}
    for number, check in evidence.checks:
        by_name.setdefault(check.name, []).append((number, check))
    for name, results in by_name.items():
        failed = [(n, c) for n, c in results if not c.passed]
        if not failed:
            continue
        first_number, first = failed[0]
        why = failure_line(first.output)
        passed_at = next((n for n, c in results if c.passed and n > first_number), None)
        if passed_at is not None:
            files = ", ".join(list(evidence.changed.get(passed_at, ()))[:6]) or "no file"
            lesson(
                f"Check {name} (`{first.command}`) failed with: {why}. It passed after "
                f"iteration {passed_at} changed {files}.",
                subject("check-fixed", name, why),
                [
                    Source("check", run.id, first_number, f"{name}: {first.outcome}: {why}"),
                    Source("check", run.id, passed_at, f"{name}: passed"),
                ],
                passed_at,
            )
        else:
            last_number, last = failed[-1]
            tried = sorted({path for n, _ in failed for path in evidence.changed.get(n, ())})
            lesson(
                f"Check {name} (`{first.command}`) kept failing for "
                f"{counted(len(failed), 'iteration')} with: {failure_line(last.output)}. Changing "
                f"{', '.join(tried[:6]) or 'nothing'} did not fix it.",
                subject("check-stuck", name, failure_line(last.output)),
                [Source("check", run.id, n, f"{name}: {c.outcome}") for n, c in failed[-3:]],
                last_number,
            )


def rejected_lessons(run: Run, rejected: Patch, status: NoteStatus) -> list[Note]:
    """Lessons from the changes the human rejected at merge (`rejected`: those changes, as
    the run's diff has them, which the merge took back out)."""
    lessons = []
    for file in rejected:
        for hunk in file.hunks:
            added = [line.text.strip() for line in hunk.lines if line.kind is LineKind.ADDED]
            removed = [line.text.strip() for line in hunk.lines if line.kind is LineKind.REMOVED]
            shown = [line for line in added if line][:3] or [line for line in removed][:3]
            if not shown:
                continue
            what = " | ".join(line[:120] for line in shown)
            lessons.append(
                Note(
                    run.id,
                    run.iterations,
                    NoteKind.LESSON,
                    f"The reviewer rejected this change to {file.path}: {what}. Leave such "
                    "changes out.",
                    time.time(),
                    loop=run.loop,
                    status=status,
                    sources=(Source("rejected_hunk", run.id, run.iterations, what[:200]),),
                    key=subject("rejected", file.path, *shown),
                )
            )
    return lessons[:MAX_LESSONS]
