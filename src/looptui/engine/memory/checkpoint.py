"""The checkpoint note after every iteration: where the run stands, from the evidence.

Built deterministically from what the iteration did (the agent's end, the files it changed,
the checks, the verdict and the tamper guard's flags), so that it never states what did not
happen; a loop with a `checkpoint_writer` agent gets that agent's note instead, with this
one as its material (see `writer`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from looptui.engine.evaluation import tail
from looptui.engine.models import CheckResult, DiffStat, NoteKind, Source, Verdict

MAX_FILES_NAMED = 12
_ERROR_LINE = re.compile(r"(error|fail|assert|exception|traceback|expected)", re.IGNORECASE)


@dataclass(frozen=True)
class IterationEvidence:
    """What one iteration did, as the run recorded it."""

    run_id: str
    iteration: int
    agent_ok: bool
    agent_message: str
    checks: Sequence[CheckResult]
    verdict: Verdict
    diff: DiffStat  # the run's change against its base, after this iteration
    changed: Sequence[str]  # the paths this iteration's commit changed
    unchanged_for: int = 0  # iterations in a row that changed nothing


def failure_line(output: str) -> str:
    """The line of a check's output that best says why it failed: the last one that
    names an error, else its last line."""
    lines = [line.strip() for line in tail(output, 60).splitlines() if line.strip()]
    for line in reversed(lines):
        if _ERROR_LINE.search(line):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def checkpoint_kind(evidence: IterationEvidence) -> NoteKind:
    if evidence.verdict.done:
        return NoteKind.PROGRESS
    if evidence.unchanged_for:
        return NoteKind.PROBLEM
    return NoteKind.ATTEMPT


def checkpoint_text(evidence: IterationEvidence) -> str:
    """The checkpoint: a summary line, then progress, what was tried, problems and next
    steps, each from the evidence."""
    checks, verdict = evidence.checks, evidence.verdict
    passed = sum(check.passed for check in checks)
    summary = (
        f"agent {'finished' if evidence.agent_ok else 'failed'}; "
        f"checks {passed}/{len(checks)} passed; diff {evidence.diff}"
    )
    if verdict.done:
        summary = f"goal met: {summary}"
    elif evidence.unchanged_for:
        summary = f"no change to the diff; {summary}"
    lines = [summary]
    progress = f"verdict: {verdict.outcome} ({verdict.evaluator})"
    if verdict.reasons:
        progress += f": {'; '.join(reason[:200] for reason in verdict.reasons[:3])}"
    lines.append(f"Progress: {progress}")
    tried = []
    if evidence.changed:
        named = ", ".join(evidence.changed[:MAX_FILES_NAMED])
        more = len(evidence.changed) - MAX_FILES_NAMED
        tried.append(f"changed {named}" + (f" and {more} more" if more > 0 else ""))
    else:
        tried.append("left every file as it was")
    said = " / ".join(line.strip() for line in tail(evidence.agent_message, 3).splitlines())
    if said.strip():
        tried.append(f"the agent said: {said[:400]}")
    lines.append(f"Tried: {'; '.join(tried)}")
    problems = [
        f"check {check.name} {check.outcome}: {failure_line(check.output)}"
        for check in checks
        if not check.passed
    ]
    problems += [f"tamper guard: {flag}"[:300] for flag in verdict.flags]
    if evidence.unchanged_for:
        last = evidence.unchanged_for
        problems.append(
            "the last iteration changed nothing"
            if last == 1
            else f"the last {last} iterations changed nothing"
        )
    if problems:
        lines.append("Problems: " + "; ".join(problems))
    steps = list(verdict.next_steps[:3])
    if not steps and not verdict.done:
        steps = [f"make check {check.name} pass" for check in checks if not check.passed][:3]
    if steps:
        lines.append("Next steps: " + "; ".join(step[:200] for step in steps))
    return "\n".join(lines)


def checkpoint_sources(evidence: IterationEvidence) -> tuple[Source, ...]:
    """Where the checkpoint's statements come from."""
    run, number = evidence.run_id, evidence.iteration
    sources = [Source("iteration", run, number, f"agent {'ok' if evidence.agent_ok else 'failed'}")]
    sources += [
        Source("check", run, number, f"{check.name}: {check.outcome}") for check in evidence.checks
    ]
    sources.append(Source("verdict", run, number, evidence.verdict.outcome))
    sources += [Source("tamper", run, number, str(flag)[:200]) for flag in evidence.verdict.flags]
    return tuple(sources)
