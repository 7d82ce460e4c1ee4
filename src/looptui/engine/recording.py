"""What a run writes down as it goes: its events, its iterations' ends, its checkpoint
notes, its status and its end (final, or deferred by a usage limit), and the hooks those
moments fire. The loop runner (`runner.py`) decides; this half records."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from looptui.engine.agents import (
    AgentError,
    Finished,
    OutputLine,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from looptui.engine.config import HookEvent, LoopConfig
from looptui.engine.errors import LooptuiError, UsageLimited
from looptui.engine.hooks import Hooks
from looptui.engine.memory.checkpoint import (
    IterationEvidence,
    checkpoint_kind,
    checkpoint_sources,
    checkpoint_text,
)
from looptui.engine.memory.keeping import ENDED, remember_run
from looptui.engine.memory.writer import CheckpointWriter
from looptui.engine.models import (
    CheckResult,
    DiffStat,
    Note,
    Run,
    RunStatus,
    Source,
    Verdict,
    local_clock,
)
from looptui.engine.store import Store
from looptui.engine.workspace import Repository
from looptui.protocol.events import (
    AgentFinished,
    AgentSaid,
    AnyPayload,
    ErrorReported,
    NoteAdded,
    OutputPrinted,
    StatusChanged,
    TokensUsed,
    ToolAnswered,
    ToolCalled,
)

logger = logging.getLogger(__name__)

TOOL_OUTPUT_CAP = 4000


@dataclass
class Turn:
    """What one agent turn produced."""

    ok: bool = False
    message: str = ""
    exit_code: int | None = None
    resume_token: str | None = None
    usage: Usage = field(default_factory=Usage)
    cannot_start: bool = False


class RunRecording:
    """The runner's writing half (see the module's doc)."""

    run_record: Run
    loop: LoopConfig
    store: Store
    hooks: Hooks
    _usage: Usage
    _resume: str | None
    _notes: list[Note]
    _unchanged: int
    repository: Repository
    worktree: Path
    checkpoint_writer: CheckpointWriter | None

    @property
    def run_id(self) -> str:
        return self.run_record.id

    async def _record_iteration(
        self,
        number: int,
        turn: Turn,
        commit: str | None,
        tree: str,
        diff: DiffStat,
        head: str,
    ) -> None:
        """Store the iteration's end and the run's totals."""
        self._usage = added(self._usage, turn.usage)
        usage = (turn.usage.input_tokens, turn.usage.output_tokens, turn.usage.cost_usd)
        await self.store.finish_iteration(
            self.run_id,
            number,
            agent_ok=turn.ok,
            agent_message=turn.message,
            exit_code=turn.exit_code,
            commit=commit,
            tree=tree,
            diff=diff,
            resume_token=turn.resume_token,
            usage=usage,
        )
        await self.store.update_run(
            self.run_id,
            head_commit=head,
            diff_files=diff.files,
            diff_added=diff.added,
            diff_removed=diff.removed,
            resume_token=self._resume,
            resumes=0,  # an iteration ended: the run is not in a crash loop
            input_tokens=self._usage.input_tokens,
            output_tokens=self._usage.output_tokens,
            cost_usd=self._usage.cost_usd,
        )

    def _record_agent_event(self, number: int, event: object, turn: Turn) -> None:
        match event:
            case OutputLine(text=text, stream=stream):
                self._emit(number, OutputPrinted(text, stream))
            case Text(text=text):
                self._emit(number, AgentSaid(text))
            case ToolCall(name=name, input=tool_input):
                self._emit(number, ToolCalled(name, dict(tool_input)))
            case ToolResult(name=name, output=output, is_error=is_error):
                self._emit(number, ToolAnswered(name, output[:TOOL_OUTPUT_CAP], is_error))
            case Usage() as usage:
                turn.usage = Usage(
                    turn.usage.input_tokens + usage.input_tokens,
                    turn.usage.output_tokens + usage.output_tokens,
                    turn.usage.cost_usd + usage.cost_usd,
                )
                self._emit(
                    number, TokensUsed(usage.input_tokens, usage.output_tokens, usage.cost_usd)
                )
            case AgentError(message=message):
                self._emit(number, ErrorReported(message))
            case Finished(ok=ok, message=message, exit_code=code, resume_token=token):
                turn.ok, turn.message, turn.exit_code, turn.resume_token = ok, message, code, token
                turn.cannot_start = event.cannot_start
                self._emit(number, AgentFinished(ok, message, code))

    async def _checkpoint(
        self,
        number: int,
        turn: Turn,
        checks: list[CheckResult],
        verdict: Verdict,
        diff: DiffStat,
        changed: list[str],
        head: str,
    ) -> None:
        """Write the iteration's checkpoint note: progress, what was tried (`changed`: the
        paths the turn changed), problems, next steps; from the evidence, or by the loop's
        checkpoint writer given that evidence."""
        evidence = IterationEvidence(
            run_id=self.run_id,
            iteration=number,
            agent_ok=turn.ok,
            agent_message=turn.message,
            checks=checks,
            verdict=verdict,
            diff=diff,
            changed=changed,
            unchanged_for=self._unchanged,
        )
        text = checkpoint_text(evidence)
        sources = checkpoint_sources(evidence)
        if self.checkpoint_writer is not None:
            written, why_not = await self.checkpoint_writer.write(
                self.loop.prompt, text, self.worktree, self.run_id, number
            )
            if await asyncio.to_thread(self._undo_changes, head):
                writer = self.checkpoint_writer.name
                written = text
                why_not = (
                    f"the checkpoint writer {writer} changed the worktree; its changes were "
                    "undone and its note not kept"
                )
            turn.usage = added(turn.usage, self.checkpoint_writer.usage)
            if why_not is None:
                text = written
                sources = (Source("agent", self.run_id, number, self.checkpoint_writer.name),)
                sources += checkpoint_sources(evidence)
            else:
                self._emit(number, ErrorReported(why_not))
        note = Note(
            self.run_id,
            number,
            checkpoint_kind(evidence),
            text,
            time.time(),
            loop=self.loop.name,
            sources=sources,
        )
        note_id = await self.store.add_note(note)
        self._notes.append(replace(note, id=note_id))
        self._emit(number, NoteAdded(note.kind, text))

    def _undo_changes(self, head: str) -> bool:
        """Put the worktree back at `head` (its iteration's work is committed) if anything
        changed it since; whether anything had. Files git ignores are left."""
        if self.repository.snapshot(self.worktree) == self.repository.tree_of(head):
            return False
        self.repository.restore_worktree(self.worktree, head)
        return True

    async def _hook(self, event: HookEvent, iteration: int, **fields: Any) -> None:
        """Run the loop's hooks of `event` (HookRefused from a blocking one goes up)."""
        await self.hooks.fire(
            event, self.run_record, status=RunStatus.RUNNING, iteration=iteration, **fields
        )

    async def _set_status(self, status: RunStatus, **fields: object) -> None:
        await self.store.update_run(self.run_id, status=status, **fields)
        self._emit(0, StatusChanged(status))

    async def _finish(self, status: RunStatus, error: str | None) -> None:
        try:
            # the run's last events land before its final status: a reader that sees the
            # status finished finds everything it did, and what it learned
            await self.store.flush()
            if status in ENDED:
                await remember_run(self.store, self.repository, self.run_id, self.loop, status)
                await self.store.flush()
            await self.store.update_run(
                self.run_id, status=status, error=error, finished_at=time.time()
            )
            self._emit(0, StatusChanged(status, error))
            await self.store.flush()
        except LooptuiError:  # the store itself failed: it said so once, the run just ends
            logger.exception(
                "run %s ended %s but the store could not record it", self.run_id, status
            )
            return
        # a run the service stopped has not ended: it resumes with the next service
        if status is not RunStatus.INTERRUPTED:
            await self.hooks.run_ended(self.run_id, status, error)

    async def _defer(self, limited: UsageLimited) -> None:
        """Park the run until the limit resets: not failed, not driven; the service (or
        `looptui resume`) continues it from the iteration the limit cut short."""
        reason = f"usage limit until {local_clock(limited.reset_at)} (local), resumes then"
        try:
            await self.store.flush()
            await self.store.update_run(
                self.run_id,
                status=RunStatus.DEFERRED,
                error=reason,
                retry_at=limited.reset_at,
                finished_at=time.time(),
                resume_token=self._resume,
            )
            self._emit(0, StatusChanged(RunStatus.DEFERRED, reason, limited.reset_at))
            await self.store.flush()
        except LooptuiError:
            logger.exception("run %s was deferred but the store could not record it", self.run_id)

    def _emit(self, iteration: int, payload: AnyPayload) -> None:
        self.store.emit(self.run_id, payload, iteration)


def added(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens, a.cost_usd + b.cost_usd
    )
