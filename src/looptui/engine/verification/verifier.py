"""Where "done" is decided: the tamper guard, the checks, the clean gate, the evaluator.

Each is a gate that can withhold "done" and none can grant it alone:

1. the tamper guard reads the iteration's diff (tests removed, skipped or weakened, the test
   setup changed, protected files touched): a flag is never done;
2. the checks run in the run's worktree, where the agent works (their output is its feedback);
3. when they pass, the clean gate runs them again on a clean checkout of the commit that would
   merge, and the denominator guard compares the tests counted there with the base's;
4. only then does the evaluator, if the loop has one, judge, reading that same checkout (a
   flagged iteration is still shown to it, with its flags, for the next steps it gives).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from looptui.engine.checks import run_check
from looptui.engine.config import CONFIG_NAME, LoopConfig
from looptui.engine.evaluation import ChecksEvaluator, Evaluator, Evidence
from looptui.engine.models import CheckResult, DiffStat, Flag, Verdict
from looptui.engine.verification.clean_gate import (
    BASE_COUNTS,
    CleanCheckouts,
    GateResult,
    run_gate,
)
from looptui.engine.verification.tamper import TamperPolicy, inspect_patch
from looptui.engine.verification.test_counts import (
    TestCounts,
    compare_counts,
    missing_summary,
    parse_counts,
)
from looptui.engine.workspace import Repository, parse_patch

MAX_LISTED_FILES = 20
MAX_CACHED_BASES = 200  # base commits whose test counts are kept on disk
OnCheck = Callable[[CheckResult], Awaitable[None]]
BaseCounts = dict[str, TestCounts | None]  # check name -> what its output counted on the base


@dataclass(frozen=True)
class Iteration:
    """What an iteration left to judge."""

    number: int
    worktree: Path
    base_commit: str
    head: str
    agent_ok: bool
    agent_message: str
    diff: DiffStat
    diff_text: str
    ignored_written: tuple[str, ...]  # files the turn wrote that git ignores (never merged)


@dataclass(frozen=True)
class Judgement:
    checks: tuple[CheckResult, ...]  # in the worktree, then setup and checks of the clean gate
    verdict: Verdict
    gate: GateResult | None  # None when the clean gate did not run


class Verifier:
    """Judges the iterations of one run of `loop`."""

    def __init__(
        self,
        *,
        loop: LoopConfig,
        repository: Repository,
        checkouts: CleanCheckouts,
        evaluator: Evaluator,
        environ: Mapping[str, str],
        base_counts: dict[str, BaseCounts],
    ) -> None:
        """`base_counts` is shared by the runs of an engine: the base is counted once."""
        self.loop = loop
        self.repository = repository
        self.checkouts = checkouts
        self.evaluator = evaluator
        self.environ = environ
        self._base_counts = base_counts
        self.policy = TamperPolicy(
            # the loop's own definition says what counts: an agent may not rewrite it
            protected=(*loop.protected, CONFIG_NAME),
            allow_test_edits=loop.allow_test_edits,
            check_commands=tuple(check.run for check in loop.checks) + loop.setup,
        )

    async def judge(self, iteration: Iteration, on_check: OnCheck) -> Judgement:
        flags = await self._tamper_flags(iteration)
        checks: list[CheckResult] = []
        for check in self.loop.checks:
            result = await run_check(check, iteration.worktree, self.environ)
            checks.append(result)
            await on_check(result)
        passed = iteration.agent_ok and all(c.passed for c in checks)
        unjudged = self.loop.evaluator is None and (flags or not self.loop.checks)
        if not passed or unjudged:
            verdict = await ChecksEvaluator().evaluate(self._evidence(iteration, checks, flags))
            return Judgement(tuple(checks), _with(verdict, flags), None)
        # A flagged iteration is not done whatever happens next: the clean gate and the count
        # are spared, but an evaluator still reads it, flags in hand, for the next steps.
        gated = self.loop.clean_gate and bool(self.loop.checks) and not flags
        counting = gated and not self.loop.allow_test_edits
        base = await self._counts_on_base(iteration.base_commit) if counting else {}
        gate: GateResult | None = None
        async with self.checkouts.claim(iteration.head, self._setup()) as checkout:
            if gated:
                gate = await run_gate(
                    self.checkouts,
                    checkout,
                    iteration.head,
                    self.loop.checks,
                    self.loop.setup,
                    self.environ,
                )
                for result in gate.results:
                    await on_check(result)
                checks.extend(gate.results)
                if gate.passed:
                    flags += self._denominator_flags(gate, base)
            evidence = self._evidence(iteration, checks, flags, checkout)
            if gate is not None and not gate.passed:
                verdict = await ChecksEvaluator().evaluate(evidence)
            else:
                verdict = await self.evaluator.evaluate(evidence)
        verdict = _with(verdict, flags)
        if gate is not None and not gate.passed:
            verdict = _explain_gate(verdict, gate, iteration.ignored_written)
        return Judgement(tuple(checks), verdict, gate)

    def _setup(self) -> tuple[str, ...]:
        return self.loop.setup if self.loop.clean_gate else ()

    def _evidence(
        self,
        iteration: Iteration,
        checks: list[CheckResult],
        flags: tuple[Flag, ...],
        checkout: Path | None = None,
    ) -> Evidence:
        return Evidence(
            goal=self.loop.prompt,
            iteration=iteration.number,
            agent_ok=iteration.agent_ok,
            agent_message=iteration.agent_message,
            checks=tuple(checks),
            diff=iteration.diff,
            diff_text=iteration.diff_text,
            flags=flags,
            checkout=checkout,
            commit=iteration.head,
            base_commit=iteration.base_commit,
        )

    async def _tamper_flags(self, iteration: Iteration) -> tuple[Flag, ...]:
        text = await asyncio.to_thread(
            self.repository.review_diff, iteration.base_commit, iteration.head
        )
        return tuple(inspect_patch(parse_patch(text), self.policy))

    def _denominator_flags(self, gate: GateResult, base: BaseCounts) -> tuple[Flag, ...]:
        """Fewer tests counted, or more skipped, on the commit than on the base."""
        flags: list[Flag] = []
        for check, result in zip(self.loop.checks, gate.checks, strict=True):
            before, after = base.get(check.name), parse_counts(result.output)
            if before is not None and after is None:
                flags.append(missing_summary(check.name, before))
            elif before is not None and after is not None:
                flags.extend(compare_counts(check.name, before, after))
        return tuple(flags)

    async def _counts_on_base(self, base_commit: str) -> BaseCounts:
        """What each check's output counted on the base commit: counted once, then kept."""
        key = json.dumps([base_commit, self.loop.setup, [c.run for c in self.loop.checks]])
        cache = self.checkouts.root / BASE_COUNTS
        if key not in self._base_counts:
            saved = await asyncio.to_thread(_read_counts, cache)
            if key in saved:
                self._base_counts[key] = saved[key]
        if key not in self._base_counts:
            async with self.checkouts.claim(base_commit, self.loop.setup) as checkout:
                gate = await run_gate(
                    self.checkouts,
                    checkout,
                    base_commit,
                    self.loop.checks,
                    self.loop.setup,
                    self.environ,
                )
            counts = {
                check.name: parse_counts(result.output)
                for check, result in zip(self.loop.checks, gate.checks, strict=False)
            }
            self._base_counts[key] = counts
            await asyncio.to_thread(_save_counts, cache, key, counts)
        return self._base_counts[key]


def _read_counts(cache: Path) -> dict[str, BaseCounts]:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    counts: dict[str, BaseCounts] = {}
    if isinstance(data, dict):
        for key, checks in data.items():
            with contextlib.suppress(TypeError, AttributeError):
                counts[key] = {
                    name: None if value is None else TestCounts(**value)
                    for name, value in checks.items()
                }
    return counts


def _save_counts(cache: Path, key: str, counts: BaseCounts) -> None:
    """Add `counts` to the cache file, written whole and replaced at once."""
    saved = _read_counts(cache)
    saved[key] = counts
    data = {
        k: {name: None if c is None else dataclasses.asdict(c) for name, c in v.items()}
        for k, v in list(saved.items())[-MAX_CACHED_BASES:]
    }
    # a name of its own: several runs of one process may save at once (threads)
    temporary = cache.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, cache)


def _with(verdict: Verdict, flags: tuple[Flag, ...]) -> Verdict:
    """The verdict with the tamper guard's flags added, and a next step for each."""
    if not flags:
        return verdict
    count = f"{len(flags)} change{'s' if len(flags) > 1 else ''}"
    reason = f"the tamper guard flagged {count}: {flags[0]}" + (", ..." if len(flags) > 1 else "")
    step = (
        "Reach the goal by fixing the code: undo the flagged changes to the tests, their "
        "configuration and the protected files"
    )
    return dataclasses.replace(
        verdict,
        done=False,
        flags=verdict.flags + flags,
        reasons=(reason, *verdict.reasons),
        next_steps=(step, *verdict.next_steps),
    )


def _explain_gate(verdict: Verdict, gate: GateResult, ignored: tuple[str, ...]) -> Verdict:
    """Say why the checks that passed in the worktree failed on the clean checkout."""
    failed = next((r for r in gate.results if not r.passed), None)
    what = f"`{failed.command}`" if failed else "the checks"
    reason = (
        f"the checks passed in the worktree but {what} failed on a clean checkout of "
        f"{gate.commit[:12]}, the commit that would merge"
    )
    if ignored:
        listed = ", ".join(ignored[:MAX_LISTED_FILES])
        more = (
            f" and {len(ignored) - MAX_LISTED_FILES} more"
            if len(ignored) > MAX_LISTED_FILES
            else ""
        )
        reason += f"; the turn wrote files git ignores, which never merge: {listed}{more}"
    step = (
        "Make the change in tracked files: what git ignores (caches, build outputs, compiled "
        "modules) is not part of the commit and does not count"
    )
    return dataclasses.replace(
        verdict, reasons=(reason, *verdict.reasons), next_steps=(step, *verdict.next_steps)
    )
