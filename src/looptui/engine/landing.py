"""Whether a run's work may land: its status and its last verdict, worded once.

A run lands only on evidence: its last verdict must say done (no flags, not unknown). The
CLI and the TUI both word a refusal, and what a merge of nothing says, through this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from looptui.engine.models import Flag, ReviewTally, Run, RunStatus, Verdict
from looptui.engine.workspace import MergePreview, SelectionCounts

# Statuses that say the goal was not met, whatever the last verdict said.
UNFINISHED = frozenset(
    {
        RunStatus.FAILED,
        RunStatus.STALLED,
        RunStatus.CANCELLED,
        RunStatus.PAUSED,
        RunStatus.INTERRUPTED,
        RunStatus.DEFERRED,
    }
)
_PASSED = re.compile(r"^check .+ passed$")


@dataclass(frozen=True)
class MergeGate:
    """Whether a run's work may land without `--force`, and why not when it may not."""

    run_id: str
    status: str
    outcome: str  # the last verdict's outcome ("done", "flagged"...), "none" if never judged
    allowed: bool
    reason: str  # one line; "" when allowed
    flags: tuple[Flag, ...] = ()

    @property
    def other_flags(self) -> tuple[Flag, ...]:
        """The flags that `reason` does not already name, to list under it."""
        return tuple(flag for flag in self.flags if str(flag) not in self.reason)

    @property
    def refusal(self) -> str:
        """The one-line error of a merge without `--force`."""
        return f"{self.reason}; merge it anyway with --force"


def merge_gate(run: Run, verdicts: Sequence[tuple[int, Verdict]]) -> MergeGate:
    """Judge `run` by its status and its last verdict (`History.verdicts` order).

    A succeeded status is not trusted by itself: runs of an older looptui could succeed on
    less than a done verdict, so the verdict decides.
    """
    verdict = verdicts[-1][1] if verdicts else None
    outcome = verdict.outcome if verdict is not None else "none"
    flags = verdict.flags if verdict is not None else ()
    status = run.status.value
    detail = _detail(run, verdict)
    if run.status in UNFINISHED:
        reason = f"run {run.id} is {status} ({detail})"
    elif verdict is None:
        reason = f"run {run.id} is {status} but no verdict ever said it was done"
    elif outcome != "done":
        reason = f"run {run.id} is {status} but its last verdict is {outcome} ({detail})"
    else:
        return MergeGate(run.id, status, outcome, True, "", flags)
    return MergeGate(run.id, status, outcome, False, reason, flags)


def _detail(run: Run, verdict: Verdict | None) -> str:
    """The most telling line: the first flag, the first reason that is not a pass, the
    run's error."""
    if verdict is not None and verdict.flags:
        return str(verdict.flags[0])
    reasons = verdict.reasons if verdict is not None else ()
    failing = [reason for reason in reasons if not _PASSED.match(reason)]
    if failing:
        return failing[0]
    if run.error and run.error.strip():
        return run.error.strip().splitlines()[0]
    if verdict is None:
        return "never judged"
    return reasons[0] if reasons else f"verdict {verdict.outcome}"


NothingWhy = Literal["unchanged", "rejected", "merged"]


def nothing_to_merge(run: Run, why: NothingWhy) -> str:
    """What a merge of nothing says. `why`: "unchanged" when the run's own diff is empty,
    "rejected" when review left out every change, else the base already holds them."""
    if why == "unchanged":
        return f"run {run.id} changed nothing; there is nothing to merge"
    if why == "rejected":
        return f"every change of run {run.id} is rejected; there is nothing to merge"
    return f"run {run.id} has nothing to merge: {run.base_branch} already holds its changes"


def undecided_refusal(run_id: str, review: ReviewTally | None) -> str | None:
    """What a merge says under `[review] require_decisions` while hunks are undecided (or
    nobody said how much was decided); None when every hunk is."""
    why = undecided_reason(run_id, review)
    return None if why is None else f"run {run_id} is not merged: {why}"


def undecided_reason(run_id: str, review: ReviewTally | None) -> str | None:
    """Why `require_decisions` holds a merge back, and how to go on; None when it does not."""
    if review is not None and review.undecided_hunks == 0:
        return None
    if review is None:
        count = "its hunks are"
    else:
        count = plural(review.undecided_hunks, "hunk") + (
            " is" if review.undecided_hunks == 1 else " are"
        )
    return (
        f"{count} undecided and review.require_decisions is set; decide every hunk (review "
        f"screen, or looptui review {run_id} --accept/--reject)"
    )


def debt_line(review: ReviewTally) -> str:
    """The understanding debt of a merge, in a line: what lands undecided and unread."""
    if review.unread_hunks == 0:
        return "every hunk was decided or under the review cursor"
    return (
        f"{plural(review.unread_hunks, 'hunk')} ({plural(review.unread_lines, 'line')}) would "
        "land undecided, never under the review cursor"
    )


def landing_line(counts: SelectionCounts) -> str:
    """What of a review lands and what is left out, in a line."""
    left_out = [plural(counts.rejected, "hunk")] if counts.rejected else []
    if counts.rejected_lines:
        left_out.append(f"{plural(counts.rejected_lines, 'line')} inside accepted hunks")
    return (
        f"lands: {counts.accepted} accepted, {counts.undecided} undecided (as accepted); "
        f"left out: {' and '.join(left_out) or 'nothing'}"
    )


def reviewed_line(review: ReviewTally) -> str:
    """How much of a merged run review covered, in a line: "reviewed 12/40 lines"."""
    read = review.lines - review.unread_lines
    return f"reviewed {read}/{review.lines} lines, decided {review.decided_hunks}/{review.hunks}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class MergePlan:
    """What a merge of a run would do (`preview`), whether it may (`gate`), and when there is
    nothing to merge, what a merge would say (`nothing`). `review`: how much of the run the
    kept decisions cover (None when the preview was given the rejected changes itself);
    `decisions_required`: `[review] require_decisions` is set."""

    preview: MergePreview
    gate: MergeGate
    nothing: str | None = None
    review: ReviewTally | None = None
    decisions_required: bool = False
