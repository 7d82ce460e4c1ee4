"""Saved records of the engine: runs, iterations, checks, verdicts, notes.

These are plain frozen values read from and written to the store; live handles (tasks,
processes) live in the runner and the supervisor, never here.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from dataclasses import astuple, dataclass, field

import msgspec

from looptui.words import counted


class RunStatus(enum.StrEnum):
    """Where a run is in its life. Terminal states never change again except to merged/discarded."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # goal met; awaiting the human's review
    UNCHANGED = "unchanged"  # the goal held with no change: nothing to review or merge
    FAILED = "failed"
    STALLED = "stalled"
    PAUSED = "paused"  # its evaluator kept failing: a human decides what happens next
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its process died (crash, kill -9, reboot)
    # a usage limit stopped it until `retry_at`: not driven, not ended; resumed then
    DEFERRED = "deferred"
    MERGED = "merged"
    DISCARDED = "discarded"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def has_workspace(self) -> bool:
        return self not in (RunStatus.MERGED, RunStatus.DISCARDED)


# What a merged or discarded run's status line adds: nothing of it is left to open or resume.
WORKSPACE_GONE = "branch and worktree removed"


class NoteKind(enum.StrEnum):
    PROGRESS = "progress"
    ATTEMPT = "attempt"
    PROBLEM = "problem"
    NEXT_STEP = "next_step"
    LESSON = "lesson"
    FEEDBACK = "feedback"  # from the human reviewing the run


class NoteStatus(enum.StrEnum):
    """Where a note may go. A run's own notes (its checkpoints, the human's feedback) reach
    its later iterations; a lesson is `proposed` until the human accepts it, and only an
    `accepted` note reaches later runs of its loop."""

    KEPT = "kept"
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    # a lesson the human deleted: its text is gone, its subject kept, so that the same
    # lesson is not proposed again
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class Source:
    """Where a note came from: a run's iteration, a verdict, a check, the tamper guard, the
    human's review, or the human's own edit. `detail` quotes the evidence."""

    kind: str  # iteration | check | verdict | tamper | feedback | rejected_hunk | human | agent
    run_id: str | None = None
    iteration: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class DiffStat:
    files: int = 0
    added: int = 0
    removed: int = 0

    def __str__(self) -> str:
        return f"{counted(self.files, 'file')} +{self.added} -{self.removed}"


@dataclass(frozen=True)
class ReviewTally:
    """How much of a run's diff review covered: units ("hunks": a hunk, or a file taken
    whole) and changed lines, those decided, those shown on screen, and those neither,
    which land unread (the understanding debt)."""

    hunks: int = 0
    lines: int = 0
    decided_hunks: int = 0
    decided_lines: int = 0
    shown_hunks: int = 0
    shown_lines: int = 0
    unread_hunks: int = 0
    unread_lines: int = 0

    @property
    def undecided_hunks(self) -> int:
        return self.hunks - self.decided_hunks

    def __add__(self, other: ReviewTally) -> ReviewTally:
        return ReviewTally(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class Run:
    id: str
    loop: str
    agent: str
    status: RunStatus
    prompt: str
    base_branch: str
    base_commit: str
    branch: str
    worktree: str
    max_iterations: int
    iterations: int = 0
    head_commit: str | None = None
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    owner_pid: int | None = None
    diff: DiffStat = field(default_factory=DiffStat)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    resume_token: str | None = None  # the agent's session, continued by the next iteration
    resumes: int = 0  # automatic resumes in a row after the service died
    retry_at: float | None = None  # a deferred run resumes then (epoch seconds)
    review: ReviewTally | None = None  # how much of it review covered, once merged
    # read from its iterations, never written: seconds its finished iterations took, and
    # when the unfinished one began (epoch seconds)
    worked: float = 0.0
    working_since: float | None = None

    @property
    def status_label(self) -> str:
        """The status as cards and `looptui status` word it: "deferred · resumes 14:05"."""
        if self.status is RunStatus.DEFERRED and self.retry_at is not None:
            return f"{self.status.value} · resumes {local_clock(self.retry_at)}"
        return self.status.value


def status_reason(status: RunStatus, error: str | None) -> str | None:
    """What `error` says beyond the status word: None for "cancelled" after a cancelled run,
    "looptui quit" for "cancelled: looptui quit", so that no line reads "cancelled: cancelled"."""
    if not error:
        return None
    word = status.value
    if error.strip().lower() == word:
        return None
    if error.lower().startswith(word + ": "):
        return error[len(word) + 2 :]
    return error


def local_clock(when: float, now: float | None = None) -> str:
    """`when` in local time as "14:05", with the date ("May 02 14:05") when it is not today."""
    moment = dt.datetime.fromtimestamp(when)
    today = dt.datetime.fromtimestamp(time.time() if now is None else now).date()
    return moment.strftime("%H:%M" if moment.date() == today else "%b %d %H:%M")


@dataclass(frozen=True)
class CheckResult:
    name: str
    command: str
    exit_code: int | None  # None when it timed out
    duration: float
    output: str
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def outcome(self) -> str:
        return check_outcome(self.exit_code, self.timed_out)


def check_outcome(exit_code: int | None, timed_out: bool) -> str:
    """How a check ended, as every screen and command says it."""
    if exit_code == 0 and not timed_out:
        return "passed"
    return "timed out" if timed_out else f"failed (exit {exit_code})"


@dataclass(frozen=True)
class Flag:
    """A sign, found in an iteration's diff or its test counts, that the goal may have been
    gamed rather than met (a test deleted or skipped, the test setup changed, a protected file
    touched). An iteration with a flag is never done; the flag tells the agent and the human
    where to look."""

    rule: str  # which rule found it: "test-removed", "test-skipped", "protected", ...
    path: str  # the file, relative to the repository root ("" when no one file is to blame)
    line: int | None  # the line in the file's new version (or old, for removed lines)
    message: str

    @property
    def where(self) -> str:
        if not self.path:
            return "(whole change)"
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.rule}]"

    def to_data(self) -> dict[str, object]:
        """The flag as JSON data, for the store and events (`flags_from_data` reads it)."""
        return {"rule": self.rule, "path": self.path, "line": self.line, "message": self.message}


def flags_from_data(items: object) -> tuple[Flag, ...]:
    """Flags from their JSON data; what does not look like a flag is skipped."""
    if not isinstance(items, list):
        return ()
    flags = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            line = item.get("line")
            flags.append(
                Flag(
                    str(item.get("rule", "")),
                    str(item.get("path", "")),
                    line if isinstance(line, int) else None,
                    item["message"],
                )
            )
    return tuple(flags)


@dataclass(frozen=True)
class Verdict:
    """The structured judgement of one iteration. `done` is only true when the goal holds."""

    done: bool
    evaluator: str
    confidence: float = 1.0
    reasons: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()
    unknown: bool = False  # the evaluator gave no usable answer (then `done` is False)
    flags: tuple[Flag, ...] = ()  # the tamper guard's findings (then `done` is False)

    def __post_init__(self) -> None:
        if self.done and (self.unknown or self.flags):  # fail closed, whoever built it
            object.__setattr__(self, "done", False)

    @property
    def outcome(self) -> str:
        """The verdict in a word or two; every screen and command words it so."""
        if self.unknown:
            return "unknown"
        if self.flags:
            return "flagged"
        return "done" if self.done else "not done"

    @property
    def label(self) -> str:
        """The outcome with its mark, as cards and logs show it ("✔ done", "⚑ flagged")."""
        return f"{_MARKS[self.outcome]} {self.outcome}"

    @property
    def tone(self) -> str:
        """How it looks: "pass", "fail" or "unknown" (themes colour each)."""
        return {"done": "pass", "unknown": "unknown"}.get(self.outcome, "fail")


_MARKS = {"done": "✔", "not done": "✘", "flagged": "⚑", "unknown": "?"}


@dataclass(frozen=True)
class Iteration:
    run_id: str
    number: int
    started_at: float
    finished_at: float | None = None
    agent_ok: bool | None = None
    agent_message: str = ""
    commit: str | None = None
    tree: str | None = None
    diff: DiffStat = field(default_factory=DiffStat)
    prompt: str = ""  # exactly what the agent was given (secrets redacted)
    # the system text its agent sent with it, added to the agent's own when `system_appended`
    system_prompt: str | None = None
    system_appended: bool = False


@dataclass(frozen=True)
class Note:
    """A note of the memory, with its provenance (see engine/memory)."""

    run_id: str
    iteration: int
    kind: NoteKind
    text: str
    created_at: float = 0.0
    id: int | None = None  # once stored
    loop: str = ""  # the loop of its run (memory is per loop)
    status: NoteStatus = NoteStatus.KEPT
    sources: tuple[Source, ...] = ()
    edited_at: float | None = None  # when the human last edited it
    uses: int = 0  # how many prompts it reached beyond its own run
    seen: int = 1  # how many runs' evidence it was distilled from (a lesson)
    key: str | None = None  # a lesson's subject: the same lesson is not proposed twice


# Review decisions, as kept between sessions and carried by the protocol.
class Decision(enum.Enum):
    UNDECIDED = "undecided"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class KeptDecision(msgspec.Struct, frozen=True, omit_defaults=True):
    """One unit's decision as kept between sessions (`Selection.to_data`): the unit named by
    the digest of its content, so that it holds while the unit is unchanged. A unit the
    review cursor reached is kept even undecided, `shown`, so that a later merge does not
    count it as landing unread."""

    unit: str  # `digest` of the unit's content
    decision: Decision
    lines: tuple[int, ...] = ()  # the changed lines rejected inside an accepted hunk
    shown: bool = False  # the review cursor reached the unit (absent from older records)
