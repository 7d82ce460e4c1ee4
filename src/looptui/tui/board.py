"""What the grid knows of each run: its record, kept current from the engine's events.

Plain Python, no widgets: the app's bridge feeds events in and tells the screens which runs
changed; cards read summaries out.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from looptui.engine.models import DiffStat, Run, RunStatus, Verdict
from looptui.protocol.events import (
    AgentFinished,
    AgentSaid,
    Committed,
    ErrorReported,
    Event,
    EventKind,
    IterationMarked,
    OutputPrinted,
    StatusChanged,
    TokensUsed,
    ToolCalled,
    VerdictGiven,
)

LINE_KINDS = (
    EventKind.OUTPUT,
    EventKind.TEXT,
    EventKind.TOOL_CALL,
    EventKind.ERROR,
    EventKind.AGENT_FINISHED,  # its final message, when it has one
)
NEEDS_REVIEW = (RunStatus.SUCCEEDED,)
NEEDS_ATTENTION = (
    RunStatus.FAILED,
    RunStatus.STALLED,
    RunStatus.INTERRUPTED,
    RunStatus.PAUSED,
)


@dataclass
class RunSummary:
    """One card's worth of a run."""

    run: Run
    iteration: int = 0
    last_line: str = ""
    verdict: Verdict | None = None

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def needs_you(self) -> bool:
        """Finished work that waits for a human: review it, or decide what to do with it."""
        return self.status in NEEDS_REVIEW or self.status in NEEDS_ATTENTION

    def elapsed(self, now: float) -> float:
        """Seconds from its start to its end (or `now`), waits between iterations included."""
        start = self.run.started_at or self.run.created_at
        end = self.run.finished_at or now
        return max(0.0, end - start)

    def working(self, now: float) -> float:
        """Seconds its iterations took (the one going, up to `now`): the agent's, the checks'
        and the evaluator's time, without the waits for review or a usage limit."""
        run = self.run
        if not run.worked and run.working_since is None:  # a record that does not say
            return self.elapsed(now)
        going = 0.0
        if run.working_since and run.status.is_active:
            going = now - run.working_since
        elif run.working_since and run.finished_at and run.status is not RunStatus.INTERRUPTED:
            # stopped in the middle of an iteration: it worked until it was stopped (a crash
            # is found later than it happened, so its last iteration's length is unknown)
            going = run.finished_at - run.working_since
        return run.worked + max(0.0, going)

    def waiting(self, now: float) -> float:
        """Seconds between its start and its end (or `now`) that no iteration was going."""
        return max(0.0, self.elapsed(now) - self.working(now))

    def matches(self, text: str) -> bool:
        """Whether a filter's words all occur in the run's loop, agent, status, id or prompt."""
        haystack = " ".join(
            (self.run.id, self.run.loop, self.run.agent, self.status.value, self.run.prompt)
        ).lower()
        return all(word in haystack for word in text.lower().split())

    def apply(self, event: Event) -> None:
        """Fold one event into the summary."""
        match event.payload:
            case StatusChanged(status=status, error=error, retry_at=retry_at):
                changes: dict[str, object] = {"status": status, "error": error}
                changes["retry_at"] = retry_at
                if status is RunStatus.RUNNING and self.run.started_at is None:
                    changes["started_at"] = event.ts or time.time()
                if not status.is_active and self.run.finished_at is None:
                    changes["finished_at"] = event.ts or time.time()
                self.run = dataclasses.replace(self.run, **changes)  # type: ignore[arg-type]
            case IterationMarked(phase="started"):
                self.iteration = event.iteration
                self.run = dataclasses.replace(
                    self.run, iterations=event.iteration, working_since=event.ts or time.time()
                )
            case OutputPrinted(line=line):
                self.last_line = line
            case AgentSaid(text=text):
                lines = text.strip().splitlines()
                self.last_line = lines[-1] if lines else self.last_line
            case ToolCalled(name=name):
                self.last_line = f"▸ {name}"
            case AgentFinished(ok=True, message=message) if message.strip():
                # the turn's final message (claude-code's result), not its last tool
                self.last_line = message.strip().splitlines()[-1]
            case ErrorReported(message=message):
                self.last_line = f"error: {message}"
            case Committed(sha=sha, files=files, added=added, removed=removed):
                diff = DiffStat(files, added, removed)
                self.run = dataclasses.replace(self.run, diff=diff, head_commit=sha)
            case TokensUsed(input_tokens=used_in, output_tokens=used_out, cost_usd=cost):
                self.run = dataclasses.replace(
                    self.run,
                    input_tokens=self.run.input_tokens + used_in,
                    output_tokens=self.run.output_tokens + used_out,
                    cost_usd=self.run.cost_usd + cost,
                )
            case VerdictGiven() as given:
                self.verdict = given.verdict
            case _:
                pass


@dataclass
class Board:
    """Every run's summary, and which of them changed since the app last told the screens
    (the app is the one reader of `dirty`: screens hear of changes by message)."""

    summaries: dict[str, RunSummary] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)

    def add(self, summary: RunSummary) -> None:
        self.summaries[summary.id] = summary
        self.dirty.add(summary.id)

    def apply(self, event: Event) -> bool:
        """Fold an event in; False when its run is not on the board yet."""
        summary = self.summaries.get(event.run_id)
        if summary is None:
            return False
        summary.apply(event)
        self.dirty.add(event.run_id)
        return True

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def ordered(self) -> list[RunSummary]:
        """Newest first; runs created in the same instant by id, so that they keep their
        places however they reached the board (from the store, live, from another process)."""
        return sorted(self.summaries.values(), key=lambda s: (s.run.created_at, s.id), reverse=True)

    def needing_you(self) -> list[RunSummary]:
        """Runs awaiting review first, then the ones that stopped short; oldest first in each."""
        waiting = [s for s in self.summaries.values() if s.needs_you]
        return sorted(
            waiting,
            key=lambda s: (
                s.status not in NEEDS_REVIEW,
                s.run.finished_at or s.run.created_at,
                s.id,
            ),
        )


def summaries_from(
    runs: Iterable[Run], lines: dict[str, Event], verdicts: dict[str, tuple[int, Verdict]]
) -> list[RunSummary]:
    """Summaries rebuilt from the store (what the app shows at start-up)."""
    result = []
    for run in runs:
        summary = RunSummary(run=run, iteration=run.iterations)
        if run.id in lines:
            summary.apply(lines[run.id])
        if run.id in verdicts:
            summary.verdict = verdicts[run.id][1]
        result.append(summary)
    return result
