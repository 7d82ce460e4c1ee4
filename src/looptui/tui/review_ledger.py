"""What one review decided and showed, by the content of each unit, so that it holds in
either scope (the whole run, or its last iteration) and when review is opened again.

The review screen shows one scope's `Selection` at a time; the ledger folds each into the
decisions of both, starts from the decisions kept for the run (by `looptui review`, or an
earlier review), hands every change to the `DecisionKeeper`, and counts what the cursor
reached (in an earlier review too: it is kept with the decisions), for the tally a merged
run keeps. Decisions kept by someone else while the screen is open (`looptui review`) are
taken when the screen asks (`take_changed`, before a merge and when it is back on top).
"""

from __future__ import annotations

from textual.app import App

from looptui.client.api import Supervisor
from looptui.engine.models import ReviewTally
from looptui.engine.workspace import ContentId, Decision, HunkKey, Patch, Selection
from looptui.engine.workspace.selection import content_ids
from looptui.tui.decision_keeper import DecisionKeeper


class ReviewLedger:
    """One run's review across scopes: its decisions, its lines left out, what was shown."""

    def __init__(self, app: App[object], supervisor: Supervisor, run_id: str) -> None:
        self.app = app
        self.supervisor = supervisor
        self.run_id = run_id
        self.decided: dict[ContentId, Decision] = {}
        self.decided_lines: dict[ContentId, frozenset[int]] = {}
        self.shown: set[ContentId] = set()  # the units the cursor reached, in either scope
        self._ids: dict[HunkKey, ContentId] = {}  # the scope on screen's units, by key
        self._keeper: DecisionKeeper | None = None  # made once the whole run's diff is read

    def selection(self, patch: Patch) -> Selection:
        """A scope's diff, with what was decided on its changes in either scope."""
        self._ids = content_ids(patch)
        return Selection(patch, self.decided, self.decided_lines)

    def fold(self, selection: Selection) -> None:
        """Fold the selection on screen into the decisions of either scope."""
        self.decided.update(selection.by_content())
        for content in selection.by_content():
            self.decided_lines.pop(content, None)
        self.decided_lines.update(selection.lines_by_content())

    def show(self, key: HunkKey) -> bool:
        """The cursor reached `key`, a unit of the scope on screen; True when it had not
        reached that unit before (what to keep changed: `save`)."""
        content = self._ids[key]
        if content in self.shown:
            return False
        self.shown.add(content)
        return True

    async def take_kept(self, whole: Patch) -> None:
        """The whole run's diff was read: the first time, start from the decisions kept for
        the run; then keep what is decided here over that diff as it is now."""
        if self._keeper is not None:
            if self._keeper.whole is not None:
                self._keeper.whole = whole
            return
        self._keeper = DecisionKeeper(self.app, self.supervisor, self.run_id)
        read = await self._keeper.read(whole)
        if read is None:
            return
        kept, shown = read
        ids = content_ids(whole)
        self.shown.update(ids[key] for key in shown)  # shown in an earlier review
        lines = kept.lines_by_content()
        for content, decision in kept.by_content().items():
            if content not in self.decided:  # one taken here already (a diff unread) wins
                self.decided[content] = decision
                if content in lines:
                    self.decided_lines[content] = lines[content]

    async def take_changed(self, on_screen: Selection) -> bool:
        """Read the kept decisions again; when someone else changed them since they were
        read or written here, take them as they are now in place of those taken here (what
        was shown stays shown), say so, and return True. Raises `LooptuiError` when they
        cannot be read. A review that never read them (they could not be read when it
        opened) stands on its own, as it said then."""
        if self._keeper is None or self._keeper.whole is None:
            return False
        self.fold(on_screen)
        read = await self._keeper.reread()
        if read is None:
            return False
        kept, shown = read
        ids = content_ids(kept.patch)
        self.shown.update(ids[key] for key in shown)
        self.fold(kept)  # every unit of the whole run as kept, undecided ones too
        self.app.notify(
            f"the decisions on run {self.run_id} were changed outside this screen (by "
            "`looptui review`): they are shown as they are now",
            title="review decisions changed",
            severity="warning",
        )
        return True

    def save(self, selection: Selection) -> None:
        """Keep what the screen shows for the run, in the background (`DecisionKeeper`)."""
        self.fold(selection)
        if self._keeper is not None:
            self._keeper.keep(selection, self.decided, self.decided_lines, self.shown)

    def tally(self, on_screen: Selection, whole: Patch | None = None) -> ReviewTally:
        """How much of the whole run this review decided and showed: `whole` is the run's
        whole diff when the last iteration is on screen (a unit of it counts where the whole
        run holds it as is)."""
        self.fold(on_screen)
        run = on_screen if whole is None else Selection(whole, self.decided, self.decided_lines)
        ids = content_ids(run.patch)
        return run.tally({key for key, content in ids.items() if content in self.shown})
