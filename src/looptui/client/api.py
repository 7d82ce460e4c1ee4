"""`Supervisor`: what a client can ask of runs, the same in-process and over the socket.

`Engine` implements it directly; `RemoteSupervisor` sends each call to the service as a typed
command. The TUI and the CLI are written against this interface alone, and the engine's tests
run against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from looptui.engine.config import Config
from looptui.engine.landing import MergeGate, MergePlan
from looptui.engine.models import Note, ReviewTally, Run
from looptui.engine.store.feed import Feed
from looptui.engine.store.history import History
from looptui.engine.store.ledger import Firing
from looptui.engine.triggers.overview import LoopState
from looptui.engine.workspace import KeptDecision, Patch
from looptui.protocol.commands import DiffScope, ServiceInfo
from looptui.protocol.events import Lines

__all__ = ["Supervisor"]


class Supervisor(Protocol):
    """One repository's runs: start them, follow them, land or drop their work."""

    config: Config | None

    @property
    def name(self) -> str:
        """The repository's name, for titles."""
        ...

    @property
    def history(self) -> History:
        """Runs, events, verdicts and notes, read-only."""
        ...

    @property
    def service(self) -> ServiceInfo | None:
        """The service this client talks to; None for the engine in this process."""
        ...

    async def start_run(
        self, loop_name: str, prompt: str | None = None, agent: str | None = None
    ) -> Run: ...

    async def stop(self, prefix: str) -> Run: ...

    async def loops(self) -> list[LoopState]:
        """Every configured loop with its triggers, next fire times and last firings."""
        ...

    async def fire(self, loop_name: str) -> Firing:
        """Fire a loop now, through its policy and preconditions, as a trigger would."""
        ...

    async def pause(self, loop_name: str, trigger: str | None = None) -> list[str]: ...

    async def unpause(self, loop_name: str, trigger: str | None = None) -> list[str]: ...

    async def firing_history(
        self, loop_name: str | None = None, limit: int = 50
    ) -> list[Firing]: ...

    async def memory(self, loop: str | None = None, run: str | None = None) -> list[Note]:
        """The notes of a loop, or of a run (an id or its unique prefix), newest first."""
        ...

    async def note(self, note_id: int) -> Note:
        """One note by its id (NoteNotFound, one line, when no note has it)."""
        ...

    async def accept_note(self, note_id: int) -> Note:
        """Let the note reach later runs of its loop; returns it as it is now."""
        ...

    async def edit_note(self, note_id: int, text: str) -> Note:
        """Replace the note's text with the human's; returns it as it is now."""
        ...

    async def delete_note(self, note_id: int) -> Note:
        """Delete the note; returns it as it was."""
        ...

    async def resume(self, prefix: str) -> Run: ...

    async def feedback(self, prefix: str, text: str) -> Run: ...

    async def wait(self, run_id: str) -> Run: ...

    async def active_runs(self) -> list[str]:
        """The runs being driven now (queued or running), by this engine or the service."""
        ...

    async def merge(
        self,
        prefix: str,
        squash: bool = False,
        reject: str | None = None,
        force: bool = False,
        review: ReviewTally | None = None,
    ) -> str: ...

    async def preview(self, prefix: str, reject: str | None = None) -> MergePlan: ...

    async def merge_gate(self, run: Run) -> MergeGate: ...

    async def discard(self, prefix: str, force: bool = False) -> None: ...

    async def diff(self, prefix: str, color: bool = False) -> str: ...

    async def patch(self, prefix: str, scope: DiffScope = "run") -> Patch: ...

    async def review_decisions(self, prefix: str) -> list[KeptDecision]:
        """The review decisions kept for the run (`looptui review`, the review screen), as
        `Selection.to_data` gave them over its whole diff; `Selection.from_data` over that
        diff (`patch(prefix, "run")`) takes them back."""
        ...

    async def save_review_decisions(self, prefix: str, decisions: Sequence[KeptDecision]) -> None:
        """Keep `decisions` (`Selection.to_data` over the run's whole diff) for the run,
        replacing those kept before: a later review, or a merge given no `reject`, takes them."""
        ...

    def subscribe(
        self, run_id: str | None = None, after: int | None = None, lines: Lines = "all"
    ) -> Feed: ...

    async def close(self) -> None:
        """Let go: in-process, runs still going are stopped; a client of the service just
        disconnects and the runs go on."""
        ...
