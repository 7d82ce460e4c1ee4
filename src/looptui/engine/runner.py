"""The loop runner: one run, iterating agent turn → commit → checks → verdict → note.

It stops when the goal holds, the iterations or time run out, the diff stops changing
(stall), or it is cancelled. Every step is stored before the next begins. A usage limit
that says when it resets (`UsageLimited` from the agent) parks the run as deferred until
then, worktree and session kept, with the iteration it cut short to be done again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from looptui.engine.agents import (
    Agent,
    AgentTask,
    Session,
    SystemPrompt,
    Usage,
)
from looptui.engine.checks import NOT_FOUND
from looptui.engine.config import HookEvent, LoopConfig
from looptui.engine.errors import LooptuiError, UsageLimited, WorkspaceError
from looptui.engine.evaluation import ChecksEvaluator, tail
from looptui.engine.hooks import Hooks, iteration_fields, verdict_fields
from looptui.engine.memory.keeping import remembered
from looptui.engine.memory.writer import CheckpointWriter
from looptui.engine.models import (
    CheckResult,
    Note,
    Run,
    RunStatus,
    Verdict,
)
from looptui.engine.prompting import build_prompt
from looptui.engine.recording import RunRecording, Turn, added
from looptui.engine.skills.delivery import NO_SKILLS, Delivery
from looptui.engine.store import Store
from looptui.engine.verification.clean_gate import GateResult
from looptui.engine.verification.verifier import Iteration, Verifier
from looptui.engine.workspace import Repository
from looptui.engine.workspace.pool import WorktreePool
from looptui.protocol.events import (
    CheckRan,
    Committed,
    ErrorReported,
    GateRan,
    IterationMarked,
    VerdictGiven,
)
from looptui.words import counted

logger = logging.getLogger(__name__)

CHECK_TAIL_LINES = 40  # of a check's output, carried in its event for logs and screens


@dataclass(frozen=True)
class _Outcome:
    status: RunStatus | None  # None: go on iterating
    error: str | None = None


class LoopRunner(RunRecording):
    """Drives one run from its first iteration to a final status."""

    def __init__(
        self,
        *,
        run: Run,
        loop: LoopConfig,
        agent: Agent,
        verifier: Verifier,
        repository: Repository,
        store: Store,
        environ: Mapping[str, str],
        scratch_dir: Path,
        notes: Sequence[Note] = (),
        first: int | None = None,
        pool: WorktreePool | None = None,
        checkpoint_writer: CheckpointWriter | None = None,
        skills: Delivery = NO_SKILLS,
        skill_warnings: Sequence[str] = (),
    ) -> None:
        """A run that has iterations already is continued: it keeps its worktree and goes on
        from `first` (by default the one after its last) up to its `max_iterations`. A new
        run takes its worktree from `pool` when a prepared one is at its base commit.
        `skills` is what the agent receives of the loop's skills; `skill_warnings` (listings
        cut to a budget, its agent's and its evaluator's) are logged as the run starts."""
        self.run_record = run
        self.loop = loop
        self.agent = agent
        self.verifier = verifier
        self.repository = repository
        self.store = store
        self.environ = environ
        self.scratch_dir = scratch_dir
        self.pool = pool
        self.checkpoint_writer = checkpoint_writer
        self.skills = skills
        self.skill_warnings = tuple(skill_warnings)
        self.worktree = Path(run.worktree)
        self._notes: list[Note] = list(notes)
        # a run continued after a crash does again the iteration the crash cut short
        self._first = first or run.iterations + 1
        self._last = max(run.max_iterations, self._first)
        self._failing: list[CheckResult] = []
        self._verdict: Verdict | None = None
        self._unchanged = 0
        self._last_tree: str | None = None
        self._usage = Usage()
        self._unknown_verdicts = 0  # in a row
        self._resume = run.resume_token
        self.hooks = Hooks(loop.hooks, store, environ, repository.root)
        self._created = False  # this drive made the worktree: the run starts (not resumes)
        # how a cancel is recorded: a stop by hand, or the service stopping (to resume later)
        self.cancel_status = RunStatus.CANCELLED
        self.cancel_reason: str | None = None  # why it was stopped, when not by hand

    async def drive(self) -> RunStatus:
        """Run to a final status and record it; cancellation is recorded, then re-raised."""
        status, error = RunStatus.FAILED, None
        try:
            await self._set_status(
                RunStatus.RUNNING,
                started_at=self.run_record.started_at or time.time(),
                finished_at=None,
                error=None,
            )
            if self._first > 1:  # continued: its next prompt says how the last one ended
                verdicts = await self.store.verdicts(self.run_id)
                earlier = [verdict for number, verdict in verdicts if number < self._first]
                self._verdict = earlier[-1] if earlier else None
            async with asyncio.timeout(self.loop.run_timeout):
                start = await self._prepare_worktree()
                self._last_tree = await asyncio.to_thread(self.repository.tree_of, start)
                if self._created:  # HookRefused: the run fails before any agent turn
                    for warning in self.skill_warnings:  # never a silent drop
                        self._emit(0, ErrorReported(warning))
                    await self._hook(HookEvent.RUN_START, 0)
                status, error = await self._iterate()
        except TimeoutError:
            status = RunStatus.FAILED
            error = f"run timed out after {self.loop.run_timeout:g}s"
        except asyncio.CancelledError:
            if self.cancel_status is RunStatus.CANCELLED:
                await self._finish(RunStatus.CANCELLED, self.cancel_reason or "cancelled")
            else:
                await self._finish(self.cancel_status, "the looptui service stopped")
            raise
        except UsageLimited as exc:
            await self._defer(exc)
            return RunStatus.DEFERRED
        except LooptuiError as exc:
            status, error = RunStatus.FAILED, str(exc)
        except Exception as exc:  # a bug must end the run visibly, never leave it "running"
            logger.exception("run %s failed inside looptui", self.run_id)
            status, error = RunStatus.FAILED, f"internal error: {exc!r}"
        await self._finish(status, error)
        return status

    async def _prepare_worktree(self) -> str:
        """Create the run's worktree, or find it again when the run continues; returns the
        commit the next iteration starts from."""
        record = self.run_record
        exists = await asyncio.to_thread(self.worktree.is_dir)
        fresh = not exists and not await asyncio.to_thread(
            self.repository.branch_exists, record.branch
        )
        # a run resumed before its first iteration began may not have made it yet; one that
        # began an iteration had it, and one deleted since is not made again from the base
        if record.iterations == 0 and fresh:
            claimed = self.pool is not None and await self.pool.claim(
                record.base_branch, record.base_commit, record.branch, self.worktree
            )
            if not claimed:
                await asyncio.to_thread(
                    self.repository.create_worktree,
                    self.worktree,
                    record.branch,
                    record.base_commit,
                )
            self._created = True
            return record.base_commit
        if not exists:
            raise WorkspaceError(f"cannot continue: the worktree {self.worktree} is gone")
        self._usage = Usage(record.input_tokens, record.output_tokens, record.cost_usd)
        return await asyncio.to_thread(self.repository.head_of, self.worktree)

    async def _iterate(self) -> tuple[RunStatus, str | None]:
        for number in range(self._first, self._last + 1):
            outcome = await self._iteration(number)
            if outcome.status is not None:
                return outcome.status, outcome.error
        n = self.loop.max_iterations
        error = f"goal not met after {n} iteration{'s' if n > 1 else ''}"
        if self._verdict is not None and self._verdict.flags:  # why, where `status` shows it
            error += f": the tamper guard flagged {self._verdict.flags[0]}"
        return RunStatus.FAILED, error

    async def _iteration(self, number: int) -> _Outcome:
        memory = await remembered(self.store, self.loop, self.run_id, self._failing)
        prompt = build_prompt(
            self.loop.prompt,
            number,
            self._notes,
            self._failing,
            self._verdict,
            remembered=memory,
            skills=self.skills.listing,
        )
        await self.store.start_iteration(self.run_id, number, prompt)
        self._emit(number, IterationMarked("started", max=self._last))

        fresh = self._fresh_checkout(number)
        ignored_before = (
            set()
            if fresh
            else set(
                await asyncio.to_thread(
                    self.repository.untracked_entries, self.worktree, ignored_only=True
                )
            )
        )
        base = self.run_record.base_commit
        turn = await self._agent_turn(number, prompt, fresh_at=base if fresh else None)

        commit = await asyncio.to_thread(
            self.repository.commit_all, self.worktree, f"{self.loop.name}: iteration {number}"
        )
        head = await asyncio.to_thread(self.repository.head_of, self.worktree)
        tree = await asyncio.to_thread(self.repository.tree_of, head)
        base = self.run_record.base_commit
        diff = await asyncio.to_thread(self.repository.diff_stat, base, head)
        diff_text = await asyncio.to_thread(self.repository.diff, base, head)
        if commit:
            self._emit(number, Committed(commit, diff.files, diff.added, diff.removed))

        if turn.cannot_start:  # nothing was done: the checks would judge an untouched tree
            await self._record_iteration(number, turn, commit, tree, diff, head)
            fields = iteration_fields(
                done=False, agent_ok=False, checks=(), commit=commit, diff=diff
            )
            await self._hook(HookEvent.ITERATION_END, number, **fields)
            return _Outcome(RunStatus.FAILED, f"agent {self.agent.name}: {turn.message}")
        ignored = await asyncio.to_thread(
            self.repository.untracked_entries, self.worktree, ignored_only=True
        )
        judged = Iteration(
            number=number,
            worktree=self.worktree,
            base_commit=base,
            head=head,
            agent_ok=turn.ok,
            agent_message=turn.message,
            diff=diff,
            diff_text=diff_text,
            ignored_written=tuple(sorted(set(ignored) - ignored_before)),
        )

        async def record_check(result: CheckResult) -> None:
            await self.store.add_check_result(self.run_id, number, result)
            self._emit(
                number,
                CheckRan(
                    name=result.name,
                    command=result.command,
                    exit_code=result.exit_code,
                    passed=result.passed,
                    timed_out=result.timed_out,
                    duration=round(result.duration, 3),
                    tail=tail(result.output, CHECK_TAIL_LINES),
                ),
            )

        judgement = await self.verifier.judge(judged, record_check)
        checks, verdict = list(judgement.checks), judgement.verdict
        if judgement.gate is not None:
            gate = judgement.gate
            self._emit(
                number,
                GateRan(gate.commit, gate.passed, round(gate.duration, 3), judged.ignored_written),
            )
        evaluator_usage = getattr(self.verifier.evaluator, "usage", None)
        if isinstance(evaluator_usage, Usage):  # a model evaluator's tokens count too
            turn.usage = added(turn.usage, evaluator_usage)
        await self.store.add_verdict(self.run_id, number, verdict)
        self._emit(number, VerdictGiven.of(verdict))
        await self._hook(HookEvent.VERDICT, number, **verdict_fields(verdict))

        # what this turn changed, tree to tree: whether looptui or the agent itself committed
        changed = (
            await asyncio.to_thread(self.repository.changed_paths, self._last_tree, tree)
            if self._last_tree is not None and tree != self._last_tree
            else []
        )
        self._unchanged = self._unchanged + 1 if tree == self._last_tree else 0
        self._last_tree = tree
        self._failing = [check for check in checks if not check.passed]
        self._verdict = verdict
        if verdict.unknown:
            self._unknown_verdicts += 1
        elif verdict.evaluator != ChecksEvaluator.name:  # the evaluator answered again
            self._unknown_verdicts = 0
        if turn.resume_token:
            self._resume = turn.resume_token
        await self._checkpoint(number, turn, checks, verdict, diff, changed, head)

        await self._record_iteration(number, turn, commit, tree, diff, head)
        self._emit(number, IterationMarked("finished", done=verdict.done))
        fields = iteration_fields(
            done=verdict.done, agent_ok=turn.ok, checks=checks, commit=commit, diff=diff
        )
        await self._hook(HookEvent.ITERATION_END, number, **fields)

        if verdict.done and diff.files == 0:
            return _Outcome(RunStatus.UNCHANGED, self._unchanged_reason(judgement.gate))
        if verdict.done:
            return _Outcome(RunStatus.SUCCEEDED)
        spent = self._budget_spent()
        if spent:
            return _Outcome(RunStatus.FAILED, spent)
        if self._unknown_verdicts >= self.loop.evaluator_failures:
            reason = verdict.reasons[0] if verdict.reasons else "no answer"
            return _Outcome(
                RunStatus.PAUSED,
                f"the evaluator failed {counted(self._unknown_verdicts, 'time')} in a row "
                f"({reason}); "
                "paused for you",
            )
        missing = [check for check in checks if check.exit_code == NOT_FOUND]
        if missing:
            names = ", ".join(f"{c.name} ({tail(c.output, 1) or c.command})" for c in missing)
            return _Outcome(RunStatus.FAILED, f"check command not found: {names}")
        if self._unchanged >= self.loop.stall_after:
            return _Outcome(
                RunStatus.STALLED,
                f"the diff did not change for {counted(self._unchanged, 'iteration')}",
            )
        return _Outcome(None)

    def _fresh_checkout(self, number: int) -> bool:
        """Whether the worktree is a checkout this drive just made, holding its commit and
        nothing else (no run_start hook has run in it): no walk of its tree is needed
        before the agent's first turn, which a trigger waits for."""
        return (
            self._created
            and number == self._first
            and not any(hook.event is HookEvent.RUN_START for hook in self.loop.hooks)
        )

    async def _agent_turn(self, number: int, prompt: str, fresh_at: str | None = None) -> Turn:
        task = AgentTask(
            run_id=self.run_id,
            iteration=number,
            worktree=self.worktree,
            prompt=prompt,
            scratch_dir=self.scratch_dir,
            environ=self.environ,
            resume_token=self._resume,
            redact=self.store.redactor.text,
            fresh_at=fresh_at,
            skills=self.skills.skills,
        )
        turn = Turn()
        try:
            async with asyncio.timeout(self.loop.iteration_timeout):
                async with contextlib.aclosing(self.agent.run(task)) as events:
                    async for event in events:
                        if isinstance(event, Session) and event.token != self._resume:
                            # stored now, not when the turn ends: a kill mid-turn resumes it
                            self._resume = event.token
                            await self.store.update_run(self.run_id, resume_token=event.token)
                        if isinstance(event, SystemPrompt):  # what goes with the stored prompt
                            await self.store.set_system_prompt(
                                self.run_id, number, event.text, appended=event.appended
                            )
                        self._record_agent_event(number, event, turn)
                        if self.store.crowded:  # the agent waits on its pipe, lines are kept
                            await self.store.room()
                        spent = isinstance(event, Usage) and self._budget_spent(turn.usage)
                        if spent:  # stop the turn now: closing the events stops the agent
                            self._emit(number, ErrorReported(spent))
                            turn.ok, turn.message = False, spent
                            break
        except TimeoutError:
            message = f"the agent's turn timed out after {self.loop.iteration_timeout:g}s"
            self._emit(number, ErrorReported(message))
            turn.ok, turn.message = False, message
        return turn

    def _unchanged_reason(self, gate: GateResult | None) -> str:
        """Why a run that changed nothing ended, and whether the goal held on the base."""
        base = self.run_record.base_commit[:12]
        if gate is not None:  # the clean checkout held the base's tree: the goal held there
            return f"the goal held with no change: it already holds on the base commit {base}"
        why = "the clean gate is off" if not self.loop.clean_gate else "the loop has no checks"
        return (
            f"the goal held in the worktree with no change; {why}, so whether it holds on the "
            f"base commit {base} was not checked"
        )

    def _budget_spent(self, turn: Usage | None = None) -> str | None:
        """Why the loop's token or dollar budget is spent (counting `turn` not yet added)."""
        used = added(self._usage, turn or Usage())
        tokens = used.input_tokens + used.output_tokens
        if self.loop.max_tokens is not None and tokens >= self.loop.max_tokens:
            return f"token budget spent: {tokens} of {self.loop.max_tokens} tokens used"
        if self.loop.max_cost_usd is not None and used.cost_usd >= self.loop.max_cost_usd:
            return f"cost budget spent: ${used.cost_usd:.4f} of ${self.loop.max_cost_usd:g} used"
        return None
