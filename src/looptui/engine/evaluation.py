"""Verdicts: the judgement of an iteration, behind one interface that model evaluators join.

This version's evaluator decides from the checks alone. It fails closed: a failing check, a
check that timed out, or an agent turn that failed is never "done".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from looptui.engine.models import CheckResult, DiffStat, Flag, Verdict


@dataclass(frozen=True)
class Evidence:
    """What an evaluator may see: the goal and the results, never the executor's transcript."""

    goal: str
    iteration: int
    agent_ok: bool
    agent_message: str
    checks: tuple[CheckResult, ...]
    diff: DiffStat
    diff_text: str = ""  # the change against the base, for evaluators that read it
    flags: tuple[Flag, ...] = ()  # the tamper guard's findings on this iteration's diff
    # A checkout of `commit` (the commit that would merge) for evaluators that read the code;
    # nobody may write in it. None when there is none to give.
    checkout: Path | None = None
    commit: str | None = None
    base_commit: str | None = None


class Evaluator(Protocol):
    name: str

    async def evaluate(self, evidence: Evidence) -> Verdict: ...


class ChecksEvaluator:
    """Done when every check passes and the agent's turn did not fail."""

    name = "checks"

    async def evaluate(self, evidence: Evidence) -> Verdict:
        held: list[str] = []  # what speaks for done: said only when it is done
        reasons: list[str] = []
        next_steps: list[str] = []
        if not evidence.agent_ok:
            reasons.append("the agent's turn failed")
            last_words = tail(evidence.agent_message, 1) or "no message"
            next_steps.append(f"Finish the turn without an error (last words: {last_words})")
        for check in evidence.checks:
            if check.passed:
                held.append(f"check {check.name} passed")
                continue
            status = "timed out" if check.timed_out else f"failed with exit {check.exit_code}"
            reasons.append(f"check {check.name} {status}")
            last_line = tail(check.output, 1) or "no output"
            next_steps.append(f"Make `{check.command}` pass (it {status}: {last_line})")
        if not evidence.checks:
            reasons.append("no checks are configured: nothing but the agent itself says done")
            next_steps.append("Give the loop checks or an evaluator")
        done = (
            evidence.agent_ok
            and bool(evidence.checks)
            and all(c.passed for c in evidence.checks)
            and not evidence.flags
        )
        return Verdict(
            done=done,
            evaluator=self.name,
            confidence=1.0 if evidence.checks else 0.5,
            reasons=tuple(held if done else reasons),
            next_steps=tuple(next_steps),
        )


def tail(text: str, lines: int) -> str:
    """The last `lines` lines of `text`, trailing blank lines dropped."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
