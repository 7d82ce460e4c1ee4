"""The store's records: loops, runs, iterations, checks, verdicts, notes and the service's
errors. They are rare and written directly, each statement its own transaction (`Store._write`);
`Store` is these records plus the events (see `store`)."""

from __future__ import annotations

import abc
import asyncio
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from looptui.engine.errors import RunNotFound
from looptui.engine.models import (
    CheckResult,
    DiffStat,
    Iteration,
    Run,
    RunStatus,
    Verdict,
)
from looptui.engine.process import kill_orphans, process_start_time, same_process_alive
from looptui.engine.secrets import Redactor
from looptui.engine.store.rows import run_from_row, verdict_from_row
from looptui.engine.store.writer import encode_data

# What an active run whose process is gone (a crash, a kill -9) is marked interrupted with.
CRASHED = "its looptui process ended before the run finished"
_RUN_COLUMNS = (
    "id, loop, agent, status, prompt, base_branch, base_commit, branch, worktree, "
    "max_iterations, iterations, head_commit, error, created_at, started_at, finished_at, "
    "owner_pid, diff_files, diff_added, diff_removed, input_tokens, output_tokens, cost_usd, "
    "resume_token, resumes, retry_at, review, "
    # how long its iterations took, and when the one going began: a run's working time,
    # which leaves out the waits (for review, for a usage limit) between its iterations
    "(SELECT coalesce(sum(i.finished_at - i.started_at), 0) FROM iterations i "
    "WHERE i.run_id = runs.id AND i.finished_at IS NOT NULL) AS worked, "
    "(SELECT max(i.started_at) FROM iterations i "
    "WHERE i.run_id = runs.id AND i.finished_at IS NULL) AS working_since"
)
_RUN_FIELDS = frozenset(
    {
        "status",
        "iterations",
        "max_iterations",  # grows when feedback continues a run
        "head_commit",
        "error",
        "started_at",
        "finished_at",
        "owner_pid",
        "owner_host",
        "owner_started",
        "resume_token",
        "resumes",
        "retry_at",
        "diff_files",
        "diff_added",
        "diff_removed",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }
)


class Records(abc.ABC):
    """The records' queries, over the reads and writes a store provides."""

    redactor: Redactor

    @abc.abstractmethod
    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    @abc.abstractmethod
    async def _write(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, int]: ...

    # -- loops and runs ------------------------------------------------------------------------

    async def record_loop(self, name: str, definition: Mapping[str, Any]) -> None:
        """Remember a loop's definition as it was run (redacted like everything stored)."""
        text, _ = encode_data(self.redactor.value(dict(definition)))
        await self._write(
            "INSERT INTO loops (name, definition, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, "
            "updated_at = excluded.updated_at",
            (name, text, time.time()),
        )

    async def insert_run(self, run: Run) -> None:
        await self._write(
            "INSERT INTO runs (id, loop, agent, status, prompt, base_branch, base_commit, branch, "
            "worktree, max_iterations, created_at, owner_pid, owner_host, owner_started) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.loop,
                run.agent,
                run.status.value,
                self.redactor.text(run.prompt),
                run.base_branch,
                run.base_commit,
                run.branch,
                run.worktree,
                run.max_iterations,
                run.created_at,
                os.getpid(),
                socket.gethostname(),
                process_start_time(os.getpid()),
            ),
        )

    async def add_service_error(self, message: str) -> None:
        """Record one of the service's own errors (redacted, like everything stored)."""
        await self._write(
            "INSERT INTO service_errors (created_at, pid, message) VALUES (?, ?, ?)",
            (time.time(), os.getpid(), self.redactor.text(message)),
        )

    async def service_errors(self, limit: int = 20) -> list[tuple[float, int, str]]:
        """The newest of the service's errors, oldest first: (time, pid, message)."""
        rows = await self._fetchall(
            "SELECT created_at, pid, message FROM (SELECT * FROM service_errors "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            (limit,),
        )
        return [(row["created_at"], row["pid"], row["message"]) for row in rows]

    async def claim_run(self, run_id: str, **fields: Any) -> None:
        """Make this process the run's owner (it drives it from now on), with `fields` set in
        the same write: a run continued by a process that did not start it must not look
        orphaned to the next `mark_interrupted`."""
        await self.update_run(
            run_id,
            owner_pid=os.getpid(),
            owner_host=socket.gethostname(),
            owner_started=process_start_time(os.getpid()),
            **fields,
        )

    async def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise ValueError(f"not run fields: {sorted(unknown)}")
        if isinstance(fields.get("status"), RunStatus):
            fields["status"] = fields["status"].value
        if isinstance(fields.get("error"), str):
            fields["error"] = self.redactor.text(fields["error"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self._write(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    async def run(self, run_id: str) -> Run:
        rows = await self._fetchall(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run {run_id!r}")
        return run_from_row(rows[0])

    async def find_run(self, prefix: str) -> Run:
        """The one run whose id starts with `prefix`."""
        if not prefix or any(ch in prefix for ch in "%_"):
            raise RunNotFound(f"no run matches {prefix!r}")
        rows = await self._fetchall(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ORDER BY created_at LIMIT 3",
            (prefix + "%",),
        )
        if not rows:
            raise RunNotFound(f"no run matches {prefix!r}")
        if len(rows) > 1:
            ids = ", ".join(row["id"] for row in rows)
            raise RunNotFound(f"{prefix!r} matches several runs ({ids}); give more of the id")
        return run_from_row(rows[0])

    async def runs(self, statuses: Iterable[RunStatus] | None = None) -> list[Run]:
        query = f"SELECT {_RUN_COLUMNS} FROM runs"
        params: list[str] = []
        if statuses is not None:
            params = [status.value for status in statuses]
            query += f" WHERE status IN ({', '.join('?' for _ in params)})"
        return [
            run_from_row(row)
            for row in await self._fetchall(query + " ORDER BY created_at", params)
        ]

    async def mark_interrupted(self) -> list[str]:
        """Mark active runs of this host whose owning process is gone as interrupted, and kill
        the agents and checks such a run left running (see `process.kill_orphans`).

        The owner is its pid and its start time: a process that got the same pid later is
        not the owner."""
        host = socket.gethostname()
        rows = await self._fetchall(
            "SELECT id, status, worktree, owner_pid, owner_started FROM runs "
            "WHERE status IN (?, ?) AND owner_host = ?",
            (RunStatus.QUEUED.value, RunStatus.RUNNING.value, host),
        )
        lost = [
            row for row in rows if not same_process_alive(row["owner_pid"], row["owner_started"])
        ]
        for row in lost:
            await self.update_run(
                row["id"],
                status=RunStatus.INTERRUPTED,
                finished_at=time.time(),
                error=CRASHED,
            )
            if row["status"] == RunStatus.RUNNING.value:
                await asyncio.to_thread(kill_orphans, row["worktree"])
        return [row["id"] for row in lost]

    # -- iterations, checks, verdicts, notes -------------------------------------------------

    async def start_iteration(self, run_id: str, number: int, prompt: str) -> None:
        await self._write(
            # an iteration that a crash cut short starts again under its number
            "INSERT INTO iterations (run_id, number, started_at, prompt) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, number) DO UPDATE SET started_at = excluded.started_at, "
            "prompt = excluded.prompt, finished_at = NULL, system_prompt = NULL, "
            "system_appended = 0",
            (run_id, number, time.time(), self.redactor.text(prompt)),
        )
        await self.update_run(run_id, iterations=number)

    async def set_system_prompt(
        self, run_id: str, number: int, text: str, *, appended: bool = False
    ) -> None:
        """The system text the iteration's agent sends with its prompt (see `SystemPrompt`)."""
        await self._write(
            "UPDATE iterations SET system_prompt = ?, system_appended = ? "
            "WHERE run_id = ? AND number = ?",
            (self.redactor.text(text), int(appended), run_id, number),
        )

    async def finish_iteration(
        self,
        run_id: str,
        number: int,
        *,
        agent_ok: bool,
        agent_message: str,
        exit_code: int | None,
        commit: str | None,
        tree: str | None,
        diff: DiffStat,
        resume_token: str | None = None,
        usage: tuple[int, int, float] = (0, 0, 0.0),
    ) -> None:
        await self._write(
            "UPDATE iterations SET finished_at = ?, agent_ok = ?, agent_message = ?, "
            "exit_code = ?, commit_sha = ?, tree = ?, "
            "diff_files = ?, diff_added = ?, diff_removed = ?, "
            "resume_token = ?, input_tokens = ?, output_tokens = ?, cost_usd = ? "
            "WHERE run_id = ? AND number = ?",
            (
                time.time(),
                int(agent_ok),
                self.redactor.text(agent_message),
                exit_code,
                commit,
                tree,
                diff.files,
                diff.added,
                diff.removed,
                resume_token,
                *usage,
                run_id,
                number,
            ),
        )

    async def iterations(self, run_id: str) -> list[Iteration]:
        rows = await self._fetchall(
            "SELECT * FROM iterations WHERE run_id = ? ORDER BY number", (run_id,)
        )
        return [
            Iteration(
                run_id=row["run_id"],
                number=row["number"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                agent_ok=None if row["agent_ok"] is None else bool(row["agent_ok"]),
                agent_message=row["agent_message"],
                commit=row["commit_sha"],
                tree=row["tree"],
                diff=DiffStat(row["diff_files"], row["diff_added"], row["diff_removed"]),
                prompt=row["prompt"],
                system_prompt=row["system_prompt"],
                system_appended=bool(row["system_appended"]),
            )
            for row in rows
        ]

    async def add_check_result(self, run_id: str, iteration: int, result: CheckResult) -> None:
        await self._write(
            "INSERT INTO check_results (run_id, iteration, name, command, exit_code, timed_out, "
            "duration, output) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                iteration,
                result.name,
                self.redactor.text(result.command),
                result.exit_code,
                int(result.timed_out),
                result.duration,
                self.redactor.text(result.output),
            ),
        )

    async def check_results(self, run_id: str) -> list[tuple[int, CheckResult]]:
        rows = await self._fetchall(
            "SELECT * FROM check_results WHERE run_id = ? ORDER BY iteration, id", (run_id,)
        )
        return [
            (
                row["iteration"],
                CheckResult(
                    name=row["name"],
                    command=row["command"],
                    exit_code=row["exit_code"],
                    duration=row["duration"],
                    output=row["output"],
                    timed_out=bool(row["timed_out"]),
                ),
            )
            for row in rows
        ]

    async def add_verdict(self, run_id: str, iteration: int, verdict: Verdict) -> None:
        redact = self.redactor.text
        await self._write(
            "INSERT INTO verdicts (run_id, iteration, done, unknown, evaluator, confidence, "
            "reasons, next_steps, flags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                iteration,
                int(verdict.done and not verdict.unknown),
                int(verdict.unknown),
                verdict.evaluator,
                verdict.confidence,
                json.dumps([redact(reason) for reason in verdict.reasons]),
                json.dumps([redact(step) for step in verdict.next_steps]),
                redact(json.dumps([flag.to_data() for flag in verdict.flags])),
                time.time(),
            ),
        )

    async def verdicts(self, run_id: str) -> list[tuple[int, Verdict]]:
        rows = await self._fetchall(
            "SELECT * FROM verdicts WHERE run_id = ? ORDER BY iteration, id", (run_id,)
        )
        return [(row["iteration"], verdict_from_row(row)) for row in rows]

    async def latest_verdicts(self) -> dict[str, tuple[int, Verdict]]:
        """Each run's verdict of its newest judged iteration, in one query."""
        rows = await self._fetchall(
            "SELECT * FROM verdicts v WHERE id = "
            "(SELECT id FROM verdicts WHERE run_id = v.run_id ORDER BY iteration DESC, id DESC "
            "LIMIT 1)"
        )
        return {row["run_id"]: (row["iteration"], verdict_from_row(row)) for row in rows}
