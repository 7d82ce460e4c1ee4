"""The review screen's decisions kept in the store as they are taken, where `looptui review`
and `looptui merge` (and the screen opened again) find them.

Decisions are kept over the run's whole diff, whichever scope the screen shows, keyed by
the content of each unit (`Selection.to_data`), with the units the review cursor reached (so
that a merge after a restart does not count them unread). Writing never holds up a key: each
decision, and each unit the cursor reaches for the first time, hands the whole review over
and returns. One worker writes at a time, and when a write is done it takes the newest
review handed over meanwhile (those in between are skipped: each is the whole review), so
the writes land in the order the decisions were taken. The worker belongs to the app, not
the screen, so that leaving review at once after a decision does not cancel its write.

The keeper remembers what it last read from the store or wrote there, so that `reread` can
tell decisions kept since by someone else (`looptui review`) from the screen's own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Mapping

import msgspec
from textual.app import App
from textual.worker import Worker, WorkerError

from looptui.client.api import Supervisor
from looptui.engine import LooptuiError
from looptui.engine.workspace import (
    ContentId,
    Decision,
    HunkKey,
    KeptDecision,
    Patch,
    Selection,
    shown_in,
)
from looptui.engine.workspace.selection import content_ids

logger = logging.getLogger(__name__)


class DecisionKeeper:
    """Reads and keeps one run's review decisions for its review screen."""

    def __init__(self, app: App[object], supervisor: Supervisor, run_id: str) -> None:
        self.app = app
        self.supervisor = supervisor
        self.run_id = run_id
        # the whole run's diff as last read, over which decisions are kept; None until the
        # kept decisions were read: nothing is written before, lest it erase them
        self.whole: Patch | None = None
        self._unkept: frozenset[HunkKey] = frozenset()  # rejections said not to be kept
        self._waiting: list[KeptDecision] | None = None
        self._writer: Worker[None] | None = None  # writes what waits until nothing does
        # what the store holds as far as this keeper knows: what it read there last, or
        # wrote there since; and the write on its way, which may have landed already
        self._stored: frozenset[KeptDecision] = frozenset()
        self._writing: frozenset[KeptDecision] | None = None
        # a write found decisions kept by someone else and kept them where the screen had
        # not changed a unit: the screen is to take the store's at its next `reread`
        self._theirs_kept = False

    async def read(self, whole: Patch) -> tuple[Selection, frozenset[HunkKey]] | None:
        """The decisions kept for the run over its whole diff `whole` as it is now, and the
        units of it kept as shown under the review cursor; None (said, and nothing kept from
        this screen) when they cannot be read."""
        try:
            kept = await self.supervisor.review_decisions(self.run_id)
        except LooptuiError as exc:
            self.app.notify(
                f"{exc}; the decisions taken here are not kept (merging from here lands them)",
                title="kept review decisions not read",
                severity="error",
            )
            return None
        self.whole = whole
        self._stored = frozenset(kept)
        return Selection.from_data(whole, kept), shown_in(whole, kept)

    async def reread(self) -> tuple[Selection, frozenset[HunkKey]] | None:
        """The decisions kept for the run, as `read` gives them over the whole diff last
        read, when someone else kept others since this keeper last read or wrote them; None
        when the store holds what it knows of. A write of the screen's own still on its way
        is waited for first, lest it be taken for someone else's (or land over what is read
        here). Raises `LooptuiError` when they cannot be read."""
        assert self.whole is not None, "read first"
        if self._writer is not None and not self._writer.is_finished:
            with contextlib.suppress(WorkerError):  # one that failed said so itself
                await self._writer.wait()
        kept = await self.supervisor.review_decisions(self.run_id)
        if frozenset(kept) in (self._stored, self._writing) and not self._theirs_kept:
            return None
        self._theirs_kept = False
        self._stored = frozenset(kept)
        return Selection.from_data(self.whole, kept), shown_in(self.whole, kept)

    def keep(
        self,
        on_screen: Selection,
        decided: Mapping[ContentId, Decision],
        decided_lines: Mapping[ContentId, frozenset[int]],
        shown: Collection[ContentId] = (),
    ) -> None:
        """Have the review written without waiting: the selection on screen (over either
        scope's diff) with the decisions `decided` (by content) in either scope, and the
        units `shown` under the review cursor in either (by content). A rejection
        of the last iteration's that the whole run does not hold as a unit of its own cannot
        be kept: the screen says so, once."""
        if self.whole is None:
            return
        if on_screen.patch is self.whole:
            whole = on_screen
        else:
            whole = Selection(self.whole, decided, decided_lines)
            unkept = frozenset(on_screen.stranded(self.whole))
            if unkept - self._unkept:
                self.app.notify(
                    f"{len(unkept)} rejected {'hunk is' if len(unkept) == 1 else 'hunks are'} "
                    "not a hunk of the whole run as they are here, so the rejection is not "
                    f"kept for `looptui merge {self.run_id}`: merge from here to leave them out",
                    title="not kept",
                    severity="warning",
                )
            self._unkept = unkept
        reached = {key for key, content in content_ids(self.whole).items() if content in shown}
        self._waiting = whole.to_data(reached)
        if self._writer is None or self._writer.is_finished:
            # the method, not a coroutine: one never started (the app quit) is not left unawaited
            writer: Worker[None] = self.app.run_worker(
                self._write, group=f"review-keep-{self.run_id}", exit_on_error=False
            )
            self._writer = writer

    async def _write(self) -> None:
        while self._waiting is not None:
            decisions, self._waiting = self._waiting, None
            try:
                # never over decisions kept since by someone else (`looptui review`): theirs
                # stand on every unit this screen has not changed since it last knew the store
                stored = await self.supervisor.review_decisions(self.run_id)
                if frozenset(stored) != self._stored:
                    decisions = merged(self._stored, decisions, stored)
                    self._theirs_kept = True
                self._writing = frozenset(decisions)
                await self.supervisor.save_review_decisions(self.run_id, decisions)
            except LooptuiError as exc:
                self._failed(str(exc))
            except Exception as exc:  # a write that failed must show it, whatever the cause
                logger.exception("keeping the review decisions of run %s failed", self.run_id)
                self._failed(f"{type(exc).__name__}: {exc}")
            else:
                self._stored = frozenset(decisions)
            finally:
                self._writing = None

    def _failed(self, why: str) -> None:
        self.app.notify(
            f"{why}; `looptui merge {self.run_id}` would not know of them (merging from the "
            "review screen still lands what it shows)",
            title="review decisions not kept",
            severity="error",
        )


def merged(
    known: Collection[KeptDecision],
    ours: Collection[KeptDecision],
    theirs: Collection[KeptDecision],
) -> list[KeptDecision]:
    """The review to keep when someone else kept `theirs` over what this screen knew of
    (`known`): per unit, the screen's decision (`ours`) where it changed that unit since,
    else theirs; a unit is shown when either side showed it."""
    was, mine, other = ({entry.unit: entry for entry in side} for side in (known, ours, theirs))
    kept: list[KeptDecision] = []
    for unit in sorted({*mine, *other}):
        changed_here = _decided(mine.get(unit)) != _decided(was.get(unit))  # undone too
        pick = mine.get(unit) if changed_here else other.get(unit)
        shown = any(
            entry is not None and entry.shown for entry in (mine.get(unit), other.get(unit))
        )
        if pick is not None and pick.decision is not Decision.UNDECIDED:
            kept.append(msgspec.structs.replace(pick, shown=shown))
        elif shown:
            kept.append(KeptDecision(unit, Decision.UNDECIDED, shown=True))
    return kept


def _decided(entry: KeptDecision | None) -> tuple[Decision, tuple[int, ...]] | None:
    """What a kept entry decides (an undecided one, kept as shown, decides nothing)."""
    if entry is None or entry.decision is Decision.UNDECIDED:
        return None
    return entry.decision, entry.lines
