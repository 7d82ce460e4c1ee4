"""The engine's facade: the one object the CLI, the TUI and tests talk to.

Commands go in as async method calls (start, stop, merge, discard, diff); everything that
happens comes out as events from `subscribe()`. Runs go concurrently up to `max_parallel`.
Reviewing and landing a stopped run's work (diff, merge, discard) is in `review`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from looptui.engine.agents import Agent, build_agent
from looptui.engine.checks import preflight_check
from looptui.engine.config import Config, LoopConfig
from looptui.engine.errors import ConfigError, LooptuiError, WorkspaceError
from looptui.engine.evaluation import ChecksEvaluator, Evaluator
from looptui.engine.evaluator_agent import AgentEvaluator
from looptui.engine.executor import Executor, LocalExecutor
from looptui.engine.memory.control import MemoryControl
from looptui.engine.memory.writer import INSTRUCTIONS, CheckpointWriter
from looptui.engine.models import Note, NoteKind, Run, RunStatus
from looptui.engine.review import ReviewMixin
from looptui.engine.runner import LoopRunner
from looptui.engine.secrets import Redactor
from looptui.engine.skills import discover_skills
from looptui.engine.skills.delivery import run_skills
from looptui.engine.store import History, Store
from looptui.engine.store.feed import CursorFeed, Feed
from looptui.engine.store.records import CRASHED
from looptui.engine.triggers.control import TriggerControl
from looptui.engine.triggers.firings import Firings
from looptui.engine.triggers.placeholders import render
from looptui.engine.verification.clean_gate import CleanCheckouts
from looptui.engine.verification.verifier import BaseCounts, Verifier
from looptui.engine.workspace import Repository
from looptui.engine.workspace.own_writes import OwnWrites
from looptui.engine.workspace.pool import WorktreePool
from looptui.protocol.events import Lines, NoteAdded, StatusChanged
from looptui.words import counted

RESUMABLE = (RunStatus.INTERRUPTED, RunStatus.CANCELLED, RunStatus.PAUSED, RunStatus.DEFERRED)


class Engine(ReviewMixin, TriggerControl, MemoryControl):
    """One repository's runs: start them, watch them, and land or drop their work."""

    def __init__(
        self,
        repository: Repository,
        store: Store,
        environ: Mapping[str, str],
        config: Config | None = None,
    ) -> None:
        self.repository = repository
        self.store = store
        self.environ = dict(environ)
        self.config = config
        self.recovered: tuple[str, ...] = ()  # runs found orphaned when it opened
        self._continuing_runs: set[str] = set()  # being resumed or given feedback now
        self.executor: Executor = LocalExecutor(store, config.max_parallel if config else 1)
        # the clean checkouts where "done" is decided, and what the tests counted on each base
        self.checkouts = CleanCheckouts(repository, repository.worktrees_dir / "clean")
        self._base_counts: dict[str, BaseCounts] = {}
        # what fires its loops: the service's scheduler, or made when `fire` is first asked
        self.firings: Firings | None = None
        self.own_writes = OwnWrites()  # files its merges wrote in the user's checkout
        # worktrees checked out ahead of runs (settings.pool_size); filled by `warm_pool`
        self.pool: WorktreePool | None = None
        if config is not None and config.pool_size > 0:
            self.pool = WorktreePool(repository, config.pool_size)

    @classmethod
    async def open(
        cls, start: Path, environ: Mapping[str, str], config: Config | None = None
    ) -> Engine:
        """Open the engine of the repository containing `start`; runs whose process died
        are marked interrupted."""
        repository = Repository(start)
        redactor = Redactor.from_environment(environ)
        if config is not None:  # secrets set in looptui.toml for the agents, and API keys in
            # variables whose names do not say so (api_key_env = "LOCAL_LLM")
            keys = {agent.api_key_env for agent in config.agents.values() if agent.api_key_env}
            named = [environ[name] for name in sorted(keys) if environ.get(name)]
            redactor = redactor.with_values([*config.secret_values(), *named])
        store = await Store.open(repository.store_path, redactor)
        try:
            recovered = await store.mark_interrupted()
            for run_id in recovered:  # the history says why, as the record does
                store.emit(run_id, StatusChanged(RunStatus.INTERRUPTED, CRASHED))
        except BaseException:  # Ctrl-C too: close the store before the event loop ends
            await store.close()
            raise
        engine = cls(repository, store, environ, config)
        engine.recovered = tuple(recovered)
        return engine

    async def close(self, status: RunStatus = RunStatus.CANCELLED) -> None:
        """Stop runs still going, recorded as `status` (cancelled; or interrupted, when the
        service stops and the next one is to resume them), then close the store."""
        if self.firings is not None:  # nothing fires while the runs stop
            await self.firings.close()
        await self.executor.close(status)
        if self.pool is not None:  # after the runs: none is taking a slot any more
            await self.pool.close()
        await self.store.close()

    def reconfigure(self, config: Config | None) -> None:
        """Use `config` from now on (the service reloads looptui.toml when it changes); runs
        already going keep the loop they started with."""
        self.config = config
        size = config.pool_size if config is not None else 0
        if self.pool is not None:  # a lower size takes effect at the next fill
            self.pool.size = size
        elif size > 0:
            self.pool = WorktreePool(self.repository, size)

    def warm_pool(self) -> list[str]:
        """Fill the worktree pool, in the background, for the base branch of every configured
        loop; returns those branches (none without a pool). The service calls it as it
        starts: runs started later on those bases skip their checkout."""
        if self.pool is None or self.config is None:
            return []
        bases: set[str] = set()
        for loop in self.config.loops.values():
            try:
                bases.add(loop.base or self.repository.current_branch())
            except WorkspaceError:  # a detached HEAD: such a loop's runs say why when started
                continue
        for base in sorted(bases):
            self.pool.refill(base)
        return sorted(bases)

    def subscribe(
        self, run_id: str | None = None, after: int | None = None, lines: Lines = "all"
    ) -> Feed:
        """Events of one run (or all) as they are stored: first those after the cursor
        `after` (the id of the last event the caller saw; None: none of the past), then live
        ones, with no gap and no duplicate. `lines="newest"` leaves out the output lines
        that a newer line of the same run follows in a batch (for views of the newest)."""
        return CursorFeed(self.store, run_id, after, lines)

    @property
    def history(self) -> History:
        """The store, read-only: runs, events, verdicts and notes for screens and reports."""
        return self.store

    @property
    def name(self) -> str:
        """The repository's name, for titles."""
        return self.repository.root.name

    # -- runs ------------------------------------------------------------------------------

    async def start_run(
        self,
        loop_name: str,
        prompt: str | None = None,
        agent: str | None = None,
        fired: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Check that the run can start, record it as queued, and schedule it.

        `prompt` and `agent` (the name of a configured agent) override the loop's own.
        `fired` is what a trigger's firing carried; its placeholders fill the prompt (None:
        started by hand). `run_id`: one `new_run_id` reserved (a firing names its run first).
        """
        if self.config is None:
            raise LooptuiError("no configuration loaded")
        defined = loop = self.config.loop(loop_name)
        if agent is not None and agent not in self.config.agents:
            known = ", ".join(sorted(self.config.agents)) or "none"
            raise ConfigError(f"unknown agent {agent!r} (configured: {known})")
        if agent is not None:
            loop = dataclasses.replace(loop, agent=agent)
        agent_config = self.config.agents[loop.agent]
        backend = build_agent(agent_config)
        root = self.repository.root
        backend.preflight(self.environ, root)
        self._judge(loop)  # an evaluator that cannot start is found now, not after a turn
        for check in loop.checks:
            preflight_check(check, self.environ, root)
        base_branch = loop.base or self.repository.current_branch()
        base_commit = self.repository.branch_commit(base_branch)
        run_id = run_id or await self.new_run_id()
        run = Run(
            id=run_id,
            loop=loop.name,
            agent=agent_config.name,
            status=RunStatus.QUEUED,
            prompt=render(prompt or loop.prompt, fired),
            base_branch=base_branch,
            base_commit=base_commit,
            branch=f"looptui/{loop.name}/{run_id}",
            worktree=str(self.repository.worktrees_dir / run_id),
            max_iterations=loop.max_iterations,
            created_at=time.time(),
        )
        if self.repository.branch_exists(run.branch):
            raise WorkspaceError(f"branch {run.branch} already exists")
        await self.store.record_loop(defined.name, dataclasses.asdict(defined))
        await self.store.insert_run(run)
        self.store.emit(run.id, StatusChanged(run.status))
        loop = dataclasses.replace(loop, prompt=run.prompt)
        self._schedule(run, loop, backend, notes=())
        return run

    async def resume(self, prefix: str, automatic: bool = False) -> Run:
        """Continue a run that was interrupted (its process died), cancelled, paused or
        deferred (a usage limit), in its worktree and from its agent's session: the
        iteration it was cut short in is done again, and it goes on up to its max_iterations.

        `automatic` (after a crash) counts the resume against the loop's `max_resumes`; a
        deferred run's resume at its limit's reset is not automatic in that sense."""
        if self.config is None:
            raise LooptuiError("no configuration loaded")
        await self.store.mark_interrupted()
        run = await self.store.find_run(prefix)
        async with self._continuing(run.id):
            return await self._resume(run, automatic)

    async def _resume(self, run: Run, automatic: bool) -> Run:
        if run.status not in RESUMABLE:
            raise LooptuiError(
                f"run {run.id} is {run.status}; only interrupted, cancelled, paused or "
                "deferred runs resume (give feedback to continue a finished one)"
            )
        iterations = await self.store.iterations(run.id)
        cut_short = bool(iterations) and iterations[-1].finished_at is None
        first = iterations[-1].number if cut_short else run.iterations + 1
        if first > run.max_iterations:
            raise LooptuiError(
                f"run {run.id} has used all its {counted(run.max_iterations, 'iteration')}; "
                "give it "
                "feedback to continue"
            )
        loop, backend = self._continuation(run)
        if automatic and run.resumes >= loop.max_resumes:
            raise LooptuiError(
                f"run {run.id} was resumed {counted(run.resumes, 'time')} in a row without "
                "finishing an "
                f"iteration (max_resumes = {loop.max_resumes}); resume it by hand"
            )
        await self.store.update_run(
            run.id,
            status=RunStatus.QUEUED,
            error=None,
            finished_at=None,
            resumes=run.resumes + 1 if automatic else 0,
            retry_at=None,
        )
        self.store.emit(run.id, StatusChanged(RunStatus.QUEUED))
        notes = await self.store.notes(run.id)
        run = await self.store.run(run.id)
        self._schedule(run, loop, backend, notes, first=first)
        return run

    @contextlib.asynccontextmanager
    async def _continuing(self, run_id: str) -> AsyncIterator[None]:
        """One continuation of a run at a time: two resumes (or a resume and feedback) at
        once would put two agents in one worktree. The second is refused; a run already
        driven is refused by the status checks that follow (and the executor)."""
        if run_id in self._continuing_runs:
            raise LooptuiError(f"run {run_id} is already going")
        self._continuing_runs.add(run_id)
        try:
            yield
        finally:
            self._continuing_runs.discard(run_id)

    def _continuation(self, run: Run) -> tuple[LoopConfig, Agent]:
        """The loop and agent that continue `run`: its loop as configured now, with the
        run's own prompt and agent, both checked that they can start."""
        assert self.config is not None
        loop = dataclasses.replace(self.config.loop(run.loop), prompt=run.prompt)
        if run.agent not in self.config.agents:
            raise ConfigError(f"agent {run.agent!r} of run {run.id} is no longer configured")
        loop = dataclasses.replace(loop, agent=run.agent)
        backend = build_agent(self.config.agents[run.agent])
        backend.preflight(self.environ, self.repository.root)
        self._judge(loop)
        return loop, backend

    async def feedback(self, prefix: str, text: str) -> Run:
        """Give a finished run the human's feedback and start its next iteration on it.

        The run keeps its worktree and branch and goes on for up to its loop's
        max_iterations more; the feedback is stored as a note and leads the next prompt.
        """
        if not text.strip():
            raise LooptuiError("feedback is empty")
        if self.config is None:
            raise LooptuiError("no configuration loaded")
        found = await self.store.find_run(prefix)
        async with self._continuing(found.id):
            return await self._feedback(prefix, text)

    async def _feedback(self, prefix: str, text: str) -> Run:
        run = await self._reviewable(prefix, "give feedback")
        loop, backend = self._continuation(run)
        note = Note(run.id, run.iterations, NoteKind.FEEDBACK, text.strip(), time.time())
        await self.store.add_note(note)
        await self.store.update_run(
            run.id,
            status=RunStatus.QUEUED,
            error=None,
            max_iterations=run.iterations + loop.max_iterations,
        )
        self.store.emit(run.id, NoteAdded(note.kind, note.text))
        self.store.emit(run.id, StatusChanged(RunStatus.QUEUED))
        notes = await self.store.notes(run.id)
        run = await self.store.run(run.id)
        self._schedule(run, loop, backend, notes)
        return run

    def _judge(self, loop: LoopConfig) -> Agent | None:
        """The loop's evaluator agent, checked that it can start; None: the checks decide."""
        if loop.evaluator is None:
            return None
        assert self.config is not None
        if loop.evaluator not in self.config.agents:
            raise ConfigError(f"evaluator {loop.evaluator!r} of loop {loop.name} is not an agent")
        judge = build_agent(self.config.agents[loop.evaluator])
        judge.preflight(self.environ, self.repository.root)
        return judge

    def _schedule(
        self,
        run: Run,
        loop: LoopConfig,
        backend: Agent,
        notes: Sequence[Note],
        first: int | None = None,
    ) -> None:
        scratch_dir = self.repository.data_dir / "runs" / run.id
        judge = self._judge(loop)
        assert self.config is not None
        agents = self.config.agents
        skills = run_skills(
            self.repository.root,
            loop,
            agents[loop.agent].kind,
            agents[loop.evaluator].kind if judge is not None and loop.evaluator else None,
        )
        evaluator: Evaluator = ChecksEvaluator()
        if judge is not None:  # its own agent object: a fresh context, never the executor's
            evaluator = AgentEvaluator(
                judge,
                workdir=scratch_dir / "evaluator",
                environ=self.environ,
                redact=self.store.redactor.text,
                timeout=loop.iteration_timeout,
                allow_commands=loop.evaluator_commands,
                skills=skills.evaluator,
            )
        writer = self._checkpoint_writer(loop, scratch_dir)
        verifier = Verifier(
            loop=loop,
            repository=self.repository,
            checkouts=self.checkouts,
            evaluator=evaluator,
            environ=self.environ,
            base_counts=self._base_counts,
        )
        runner = LoopRunner(
            run=run,
            loop=loop,
            agent=backend,
            verifier=verifier,
            repository=self.repository,
            store=self.store,
            environ=self.environ,
            scratch_dir=scratch_dir,
            notes=notes,
            first=first,
            pool=self.pool,
            checkpoint_writer=writer,
            skills=skills.agent,
            skill_warnings=skills.warnings,
        )
        self.executor.submit(runner)

    def _checkpoint_writer(self, loop: LoopConfig, scratch_dir: Path) -> CheckpointWriter | None:
        """The loop's checkpoint-writer agent, its own object (a fresh context each note)."""
        if loop.checkpoint_writer is None or self.config is None:
            return None
        agent = build_agent(self.config.agents[loop.checkpoint_writer])
        agent.preflight(self.environ, self.repository.root)
        # its instructions: the checkpoint-writer skill (the project's, or looptui's own)
        skill = discover_skills(self.repository.root).get("checkpoint-writer")
        instructions = (
            f"{skill.body().strip()}\n\nAnswer with the note only, nothing around it.\n"
            if skill is not None
            else INSTRUCTIONS
        )
        return CheckpointWriter(
            agent,
            workdir=scratch_dir / "checkpoint-writer",
            environ=self.environ,
            redact=self.store.redactor.text,
            timeout=min(loop.iteration_timeout, 600.0),
            instructions=instructions,
        )

    async def wait(self, run_id: str) -> Run:
        """Wait for a run started by this engine to end; return its final record."""
        await self.executor.wait(run_id)
        return await self.store.run(run_id)

    async def stop(self, prefix: str, reason: str | None = None) -> Run:
        """Stop a run this engine drives; its worktree and everything it did are kept, and
        `reason` (when given) is its error. Returns its record (a run not driven here is left
        as it is)."""
        await self.store.mark_interrupted()
        run = await self.store.find_run(prefix)
        if not run.status.is_active:
            raise LooptuiError(f"run {run.id} is not going: it is {run.status}")
        if run.id not in self.executor.active():
            raise LooptuiError(
                f"run {run.id} is driven by another looptui process (pid {run.owner_pid}); "
                "stop it there"
            )
        await self.executor.stop(run.id, reason=reason)
        return await self.store.run(run.id)

    def active_run_ids(self) -> list[str]:
        return self.executor.active()

    async def active_runs(self) -> list[str]:
        return self.executor.active()

    @property
    def service(self) -> None:
        """No service: this engine runs in the caller's process."""
        return None

    async def new_run_id(self) -> str:
        """A run id no run has."""
        while True:
            run_id = secrets.token_hex(4)
            try:
                await self.store.run(run_id)
            except LooptuiError:
                return run_id
