"""Lifecycle hooks: the user's shell commands, run on the events of a run's life.

Each hook gets the event as one JSON object on stdin, shaped like a Claude Code hook's
(`hook_event_name`, then the run: `run_id`, `loop`, `worktree`, `branch`, `base_branch`,
`status`, `iteration`, `cwd`, then the event's own fields), and runs as `/bin/sh -c` in the
run's worktree, in a process group of its own that its timeout kills. Every hook that ran is
stored as a `HookRan` event (redacted like everything stored). On an event that can be
stopped (run_start, before_merge) exit status 2 stops it: `HookRefused`, worded from the
hook's stderr. Any other failure is recorded and the run goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looptui.engine.checks import SHELL
from looptui.engine.config import HookConfig, HookEvent
from looptui.engine.errors import HookRefused, LooptuiError
from looptui.engine.models import CheckResult, DiffStat, Run, RunStatus, Verdict
from looptui.engine.process import WORKTREE_VARIABLE, Exit, stream_process
from looptui.engine.store import Store
from looptui.protocol.events import HookRan

logger = logging.getLogger(__name__)

REFUSE = 2  # the exit status that stops a blocking event, as in Claude Code
TAIL_LINES = 20  # of each stream, kept in the HookRan event
TAIL_CHARS = 4000
REFUSAL_CHARS = 300  # of the stderr line a refusal quotes
MAX_LINES = 10_000  # read past this, a flood is counted, not decoded (its end is still kept)


@dataclass(frozen=True)
class HookResult:
    """How one hook ended, and the end of what it printed on each stream."""

    exit_code: int | None  # None: it timed out, or could not be started
    timed_out: bool
    duration: float
    stdout: str
    stderr: str
    first_error: str = ""  # its stderr's first line that is not blank (the tail may lack it)


class Hooks:
    """The hooks of one loop (the global ones, then its own), run for one run's events."""

    def __init__(
        self, hooks: Sequence[HookConfig], store: Store, environ: Mapping[str, str], root: Path
    ) -> None:
        self.hooks = tuple(hooks)
        self.store = store
        self.environ = environ
        self.root = root  # where hooks run when the run's worktree is gone

    def __bool__(self) -> bool:
        return bool(self.hooks)

    async def fire(
        self,
        event: HookEvent,
        run: Run,
        *,
        status: RunStatus,
        iteration: int,
        **fields: Any,
    ) -> None:
        """Run the event's hooks in order, each to its end or its timeout, and record each.

        Raises HookRefused when a hook of a blocking event exits 2 (the hooks after it do
        not run); never for any other outcome of a hook.
        """
        chosen = [hook for hook in self.hooks if hook.event is event]
        if not chosen:
            return
        worktree = Path(run.worktree)
        cwd = worktree if await asyncio.to_thread(worktree.is_dir) else self.root
        payload = {
            "hook_event_name": event.wire_name,
            "run_id": run.id,
            "loop": run.loop,
            "worktree": run.worktree,
            "branch": run.branch,
            "base_branch": run.base_branch,
            "status": status.value,
            "iteration": iteration,
            "cwd": str(cwd),
            **fields,
        }
        stdin = json.dumps(payload, ensure_ascii=False, default=str).encode() + b"\n"
        environ = {
            **self.environ,
            "LOOPTUI_RUN_ID": run.id,
            "LOOPTUI_EVENT": event.value,
            # also the tag that finds a hook left running by a crash, as for checks
            WORKTREE_VARIABLE: run.worktree,
        }
        for hook in chosen:
            result = await run_hook(hook, stdin, cwd, environ)
            blocked = event.blocking and result.exit_code == REFUSE
            self.store.emit(
                run.id,
                HookRan(
                    hook=event.value,
                    command=hook.command,
                    exit_code=result.exit_code,
                    blocked=blocked,
                    timed_out=result.timed_out,
                    duration=round(result.duration, 3),
                    stdout=result.stdout,
                    stderr=result.stderr,
                ),
                iteration,
            )
            if blocked:
                await self.store.flush()  # stored before the refusal is reported
                raise HookRefused(self.store.redactor.text(_refusal(event, result.first_error)))

    async def run_ended(self, run_id: str, status: RunStatus, error: str | None) -> None:
        """needs_review (when the run's work waits for the human), then run_end; called once
        the final status is stored, so that a hook asking looptui about the run sees it
        ended. Never raises: the run has ended whatever its hooks do."""
        if not self.hooks:
            return
        try:
            run = await self.store.run(run_id)
            fields = end_fields(run, error)
            events = [HookEvent.RUN_END]
            if status is RunStatus.SUCCEEDED:
                events.insert(0, HookEvent.NEEDS_REVIEW)
            for event in events:
                await self.fire(event, run, status=status, iteration=run.iterations, **fields)
            await self.store.flush()
        except LooptuiError:  # the store failed: it said so once
            logger.exception("run %s ended %s but its end hooks failed", run_id, status)


async def run_hook(
    hook: HookConfig, stdin: bytes, cwd: Path, environ: Mapping[str, str]
) -> HookResult:
    """Run one hook with `stdin`, to its end or its timeout (then its process group is
    stopped); never raises for the command's sake."""
    streams: dict[str, deque[str]] = {
        "stdout": deque(maxlen=TAIL_LINES),
        "stderr": deque(maxlen=TAIL_LINES),
    }
    first_error = ""
    exit_status = Exit()
    timed_out = False
    started = time.monotonic()
    try:
        async with asyncio.timeout(hook.timeout):
            async for line in stream_process(
                [SHELL, "-c", hook.command],
                cwd,
                environ,
                exit_status,
                stdin=stdin,
                max_lines=MAX_LINES,
            ):
                streams[line.stream].append(line.text)
                if line.stream == "stderr" and not line.note and not first_error:
                    first_error = line.text.strip()[:REFUSAL_CHARS]
    except TimeoutError:
        timed_out = True
        note = f"[looptui: hook timed out after {hook.timeout:g}s and was stopped]"
        streams["stderr"].append(note)
    except OSError as exc:  # no /bin/sh, or an environment too large to exec
        streams["stderr"].append(f"[looptui: the hook could not start: {exc}]")
    return HookResult(
        exit_code=None if timed_out else exit_status.code,
        timed_out=timed_out,
        duration=time.monotonic() - started,
        stdout=_tail(streams["stdout"]),
        stderr=_tail(streams["stderr"]),
        first_error=first_error,
    )


def verdict_fields(verdict: Verdict) -> dict[str, Any]:
    """The verdict hook's own fields."""
    return {
        "done": verdict.done,
        "outcome": verdict.outcome,
        "evaluator": verdict.evaluator,
        "confidence": verdict.confidence,
        "reasons": list(verdict.reasons),
        "next_steps": list(verdict.next_steps),
        "unknown": verdict.unknown,
        "flags": [flag.to_data() for flag in verdict.flags],
    }


def iteration_fields(
    *,
    done: bool,
    agent_ok: bool,
    checks: Sequence[CheckResult],
    commit: str | None,
    diff: DiffStat,
) -> dict[str, Any]:
    """The iteration_end hook's own fields: the verdict's word, the checks, the commit
    (None when the iteration changed nothing) and the run's diff against its base."""
    return {
        "done": done,
        "agent_ok": agent_ok,
        "checks": [
            {
                "name": check.name,
                "passed": check.passed,
                "exit_code": check.exit_code,
                "timed_out": check.timed_out,
            }
            for check in checks
        ],
        "checks_passed": all(check.passed for check in checks),
        "commit": commit,
        "diff": diff_fields(diff),
    }


def end_fields(run: Run, error: str | None) -> dict[str, Any]:
    """The run_end and needs_review hooks' own fields, from the run's final record."""
    return {
        "error": error,
        "iterations": run.iterations,
        "head_commit": run.head_commit,
        "diff": diff_fields(run.diff),
    }


def diff_fields(diff: DiffStat) -> dict[str, int]:
    return {"files": diff.files, "added": diff.added, "removed": diff.removed}


def _refusal(event: HookEvent, first_error: str) -> str:
    """The one line that says a hook stopped `event`: its stderr's first line, if any."""
    said = f": {first_error}" if first_error else " (exit 2, nothing on stderr)"
    return f"the {event.value} hook refused{said}"


def _tail(lines: deque[str]) -> str:
    return "\n".join(lines)[-TAIL_CHARS:]
