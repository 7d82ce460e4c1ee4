"""Review a run by keyboard: move by hunk and file, accept or reject, comment, merge.

`enter` opens line mode on a hunk (lazygit's staging of lines): the cursor moves over its
changed lines and `space` (or `a`/`x`) takes or leaves one, so that a debugging line inside
a hunk with a real fix stays out. What is decided lives in an engine `Selection`; merging
sends what is rejected to the engine as a patch to leave out, so the base branch gets
exactly what was accepted. The units the cursor reached count as shown: the merge preview
says how much would land neither decided nor shown, and the merged run keeps that tally.

The screen starts from the decisions kept for the run (by `looptui review`, or an earlier
review here) and keeps every decision it takes as it takes it, so that reopening review, or
`looptui review RUN` and `looptui merge RUN`, see what the screen showed. Decisions kept
meanwhile by `looptui review` are taken before a merge is previewed and whenever the screen
is back on top, and it says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.markup import escape
from textual.widgets import Static

from looptui.engine import LooptuiError
from looptui.engine.landing import nothing_to_merge
from looptui.engine.models import ReviewTally
from looptui.engine.workspace import (
    Decision,
    FilePatch,
    HunkKey,
    Patch,
    Selection,
)
from looptui.protocol.commands import DiffScope
from looptui.tui import format
from looptui.tui.review_ledger import ReviewLedger
from looptui.tui.screens.comment import CommentScreen
from looptui.tui.screens.confirm import ConfirmScreen
from looptui.tui.screens.merge import MergeScreen
from looptui.tui.screens.review_keys import ON_A_HUNK, REVIEW_BINDINGS
from looptui.tui.widgets.diff_view import DiffView
from looptui.tui.widgets.footer import KeysFooter
from looptui.tui.worktree import WorktreeScreen
from looptui.words import counted

if TYPE_CHECKING:
    from looptui.tui.app import LooptuiApp

SCOPE_NAMES = {"run": "whole run", "last": "last iteration"}


class ReviewScreen(WorktreeScreen):
    """One run's diff, unit by unit (a hunk, or a file taken whole)."""

    CSS_PATH = "review.tcss"
    BINDINGS: ClassVar[list[BindingType]] = REVIEW_BINDINGS

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.scope: DiffScope = "run"
        self.patch = Patch()
        self.selection = Selection(self.patch)
        self.line_mode = False
        self.ledger: ReviewLedger | None = None  # made once mounted, in the app

    @property
    def looptui(self) -> LooptuiApp:
        from looptui.tui.app import LooptuiApp

        assert isinstance(self.app, LooptuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="review-title")
        yield Static(id="review-verdict")
        yield DiffView(id="review-diff")
        yield KeysFooter()

    async def on_mount(self) -> None:
        self.ledger = ReviewLedger(self.app, self.looptui.engine, self.run_id)
        await self.show_verdict()
        await self.load()

    async def show_verdict(self) -> None:
        """A line on the run's last verdict when it does not prove the run done, with its
        flags: what a merge would have to be forced past."""
        line = self.query_one("#review-verdict", Static)
        engine = self.looptui.engine
        try:
            gate = await engine.merge_gate(await engine.history.find_run(self.run_id))
        except LooptuiError:
            gate = None
        line.display = gate is not None and not gate.allowed
        if gate is None or gate.allowed:
            return
        flags = "".join(f"\n  ⚑ {flag}" for flag in gate.other_flags)
        line.update(Text(f"✘ not proven done: {gate.reason}{flags}"))

    async def load(self, scope: DiffScope | None = None) -> bool:
        """Show the diff of `scope` (default: the current one), the decisions taken on its
        changes in either scope carried over. False, and nothing changes, when a rejection
        cannot be carried to the other scope."""
        scope = scope or self.scope
        view = self.query_one(DiffView)
        read = True
        try:
            patch = await self.looptui.engine.patch(self.run_id, scope)
        except LooptuiError as exc:
            self.notify(str(exc), severity="error")
            patch, read = Patch(), False
        if scope != self.scope:
            stranded = self.selection.stranded(patch)
            if stranded:
                self.notify(
                    f"{len(stranded)} rejected {'hunk is' if len(stranded) == 1 else 'hunks are'}"
                    f" not a hunk of the {SCOPE_NAMES[scope]} as they are here, so the "
                    "rejection would be lost: undo it (backspace) or merge from here",
                    title="scope not switched",
                    severity="warning",
                )
                return False
        ledger = self._ledger
        ledger.fold(self.selection)
        if read and scope == "run":
            await ledger.take_kept(patch)
        self.leave_line_mode()
        self.scope, self.patch = scope, patch
        self.selection = ledger.selection(patch)
        await view.show(self.patch, self.selection)
        keys = self.patch.keys
        self._cursor_to(keys[0] if keys else None)
        view.focus()
        self.update_title()
        if scope == "run" and not keys:
            await self.say_nothing_to_merge()
        return True

    async def say_nothing_to_merge(self) -> None:
        """A run that changed nothing says so at once, where its verdict would be, and its
        merge keys are not offered: `m` must not open a preview that merges nothing."""
        try:
            run = await self.looptui.engine.history.find_run(self.run_id)
        except LooptuiError:
            return
        line = self.query_one("#review-verdict", Static)
        line.update(Text(f"= {nothing_to_merge(run, 'unchanged')} (d discards it)"))
        line.display = True

    @property
    def _ledger(self) -> ReviewLedger:
        assert self.ledger is not None, "the screen is mounted"
        return self.ledger

    def save_decisions(self) -> None:
        """Keep what the screen shows for the run, in the background (`DecisionKeeper`)."""
        self._ledger.save(self.selection)

    async def take_kept_changes(self, unread: str = "kept review decisions not read") -> bool:
        """Show the decisions kept by someone else (`looptui review`) since the screen read
        or wrote them (the ledger says so); False, said under `unread`, when unreadable."""
        try:
            changed = await self._ledger.take_changed(self.selection)
        except LooptuiError as exc:
            why = "decisions kept since by `looptui review` would not be shown"
            self.notify(f"{exc}; {why}", title=unread, severity="error")
            return False
        if changed:
            self.selection = self.query_one(DiffView).selection = self._ledger.selection(self.patch)
            self.query_one(DiffView).mark()
            self.update_title()
        return True

    @work(group="review-kept", exclusive=True, exit_on_error=False)
    async def on_screen_resume(self) -> None:
        """Back on top (from a dialog, a shell, another screen): what was kept meanwhile."""
        if self.ledger is not None:
            await self.take_kept_changes()

    def _cursor_to(self, key: HunkKey | None) -> None:
        self.query_one(DiffView).move_cursor(key)
        if key is not None and self._ledger.show(key):
            self.save_decisions()  # reaching a unit is kept too, once

    def update_title(self) -> None:
        summary = self.looptui.board.summaries.get(self.run_id)
        counts = self.selection.counts()
        cursor = self.query_one(DiffView).cursor
        keys = self.patch.keys
        where = f"{keys.index(cursor) + 1}/{len(keys)}" if cursor in keys else "0/0"
        loop = summary.run.loop if summary else ""
        # lines left out of accepted hunks belong to them: "0 rejected (1 line)" misled
        left_out = counts.rejected_lines
        lines = f" ({counted(left_out, 'line')} left out)" if left_out else ""
        parts = [f"[b]Review[/] {loop} {self.run_id}"]
        if summary is not None:
            parts.append(f"branch [b]{escape(summary.run.branch)}[/]")
        parts += [SCOPE_NAMES[self.scope], f"unit {where}"]
        if self.line_mode:
            parts.append("[b]line mode[/] (esc: hunks)")
        parts.append(
            f"[$verdict-pass]{counts.accepted} accepted[/][$verdict-fail]{lines}[/]  "
            f"[$verdict-fail]{counts.rejected} rejected[/]  {counts.undecided} undecided"
        )
        # whole parts on as many lines as the width needs: at 80 columns the counts and the
        # line mode's way out wrap onto a second line rather than being cut off
        self.query_one("#review-title", Static).update(format.fit(parts, self.size.width - 2))
        self.refresh_bindings()

    def on_resize(self) -> None:
        if self.query(DiffView):
            self.update_title()

    def file_at_hand(self) -> tuple[str, int] | None:
        return self.query_one(DiffView).place_at_hand()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`space` belongs to line mode; outside it the footer leaves it out. With nothing in
        the scope to decide, the keys that decide, move or comment on a hunk are not offered;
        a run with no change offers no merge."""
        if action in ("toggle_line", "decide_line"):
            return self.line_mode
        if action == "line_mode" and self.line_mode:
            return False  # in it already: `enter` leaves it (leave_lines)
        if action == "leave_lines":
            return self.line_mode
        if action == "decide" and parameters != ("undecided",) and self.line_mode:
            return False  # `a`/`x` decide the line there (decide_line)
        if action in ON_A_HUNK and not self.patch.keys:
            return False
        if action == "merge":  # nothing to merge: said up front, and `m` is not offered
            return self.scope != "run" or bool(self.patch.keys)
        return True

    # -- moving ------------------------------------------------------------------------------

    @property
    def cursor(self) -> HunkKey | None:
        return self.query_one(DiffView).cursor

    def current_file(self) -> FilePatch | None:
        cursor = self.cursor
        return self.patch.files_of(cursor)[0] if cursor is not None else None

    def action_move(self, step: int) -> None:
        if self.line_mode:
            self.move_line(step)
            return
        keys = self.patch.keys
        if not keys:
            return
        index = keys.index(self.cursor) if self.cursor in keys else 0
        self._cursor_to(keys[max(0, min(len(keys) - 1, index + step))])
        self.update_title()

    def action_move_file(self, step: int) -> None:
        files = list(self.patch.files)
        current = self.current_file()
        if current is None:
            return
        self.leave_line_mode()
        index = max(0, min(len(files) - 1, files.index(current) + step))
        self._cursor_to(files[index].keys[0])
        self.update_title()

    def action_back(self) -> None:
        if self.line_mode:
            self.leave_line_mode()
            self.update_title()
        else:
            self.app.pop_screen()

    # -- line mode ---------------------------------------------------------------------------

    def action_leave_lines(self) -> None:
        self.leave_line_mode()
        self.update_title()

    def action_line_mode(self) -> None:
        """Enter line mode on the cursor's hunk (enter again, or esc, leaves it)."""
        if self.line_mode:
            self.leave_line_mode()
            self.update_title()
            return
        cursor = self.cursor
        hunk = self.selection.line_hunk(cursor) if cursor is not None else None
        if hunk is None or not hunk.changed:
            if cursor is not None:
                self.notify("this change is taken whole: accept (a) or reject (x) it")
            return
        self.line_mode = True
        self.query_one(DiffView).move_line_cursor(hunk.changed[0])
        self.update_title()

    def leave_line_mode(self) -> None:
        if self.line_mode:
            self.line_mode = False
            self.query_one(DiffView).move_line_cursor(None)

    def move_line(self, step: int) -> None:
        view = self.query_one(DiffView)
        hunk = self.selection.line_hunk(self.cursor) if self.cursor else None
        if hunk is None or view.line_cursor is None:
            return
        changed = hunk.changed
        index = changed.index(view.line_cursor) if view.line_cursor in changed else 0
        view.move_line_cursor(changed[max(0, min(len(changed) - 1, index + step))])

    def action_toggle_line(self) -> None:
        view = self.query_one(DiffView)
        cursor, line = self.cursor, view.line_cursor
        if not self.line_mode or cursor is None or line is None:
            return
        self.selection.toggle_line(cursor, line)
        view.mark({cursor})
        self.save_decisions()
        self.update_title()

    def decide_line(self, decision: Decision) -> None:
        """`a`/`x` in line mode: take or leave the line under the cursor, then the next."""
        view = self.query_one(DiffView)
        cursor, line = self.cursor, view.line_cursor
        if cursor is None or line is None:
            return
        rejected = self.selection.rejected_lines(cursor)
        if self.selection.decision(cursor) is Decision.UNDECIDED:
            rejected = frozenset()
        if decision is Decision.REJECTED:
            self.selection.decide_lines(cursor, rejected | {line})
        else:
            self.selection.decide_lines(cursor, rejected - {line})
        view.mark({cursor})
        self.save_decisions()
        self.move_line(1)
        self.update_title()

    # -- deciding ----------------------------------------------------------------------------

    def action_decide_line(self, decision: str) -> None:
        if self.cursor is not None and self.line_mode:
            self.decide_line(Decision(decision))

    def action_decide(self, decision: str) -> None:
        cursor = self.cursor
        if cursor is None:
            return
        self.leave_line_mode()  # in line mode `a`/`x` are decide_line's; undo takes the hunk
        self.selection.decide(cursor, Decision(decision))
        self.query_one(DiffView).mark({cursor})
        self.save_decisions()
        if decision != "undecided":
            self.action_move(1)  # on to the next one, as in lazygit
        self.update_title()

    def action_decide_file(self, decision: str) -> None:
        file = self.current_file()
        if file is None:
            return
        self.leave_line_mode()
        self.selection.decide_file(file, Decision(decision))
        self.query_one(DiffView).mark(set(file.keys))
        self.save_decisions()
        self.action_move_file(1)
        self.update_title()

    async def action_scope(self) -> None:
        if await self.load("last" if self.scope == "run" else "run"):
            self.save_decisions()  # the whole run's diff was read again: keep over it as it is

    def action_split(self) -> None:
        view = self.query_one(DiffView)
        view.split = not view.split

    # -- feedback, merge, discard --------------------------------------------------------------

    def action_comment(self, target: str) -> None:
        cursor, file = self.cursor, self.current_file()
        if cursor is None or file is None:
            return
        if target == "file":
            about = f"On {file.path}:"
        else:
            hunk = next((h for h in file.hunks if h.key == cursor), None)
            about = f"On {file.path}, {hunk.header}:" if hunk else f"On {file.path}:"

        def send(text: str | None) -> None:
            if text:
                self.send_feedback(f"{about} {text}")

        summary = self.looptui.board.summaries.get(self.run_id)
        limit = ""
        if summary is not None:
            run = summary.run
            limit = format.feedback_limit(run, self.looptui.loop_limit(run.loop))
        self.app.push_screen(CommentScreen(about, limit), send)

    @work(group="review-command", exclusive=True, exit_on_error=False)
    async def send_feedback(self, text: str) -> None:
        try:
            run = await self.looptui.engine.feedback(self.run_id, text)
        except LooptuiError as exc:
            self.notify(str(exc), title="feedback not sent", severity="error")
            return
        self.notify(
            f"feedback sent: run {run.id} goes on with iteration {run.iterations + 1} "
            f"of up to {run.max_iterations}"
        )
        self.dismiss()

    def rejected_patch(self) -> str | None:
        return self.selection.rejected_patch()

    async def review_tally(self) -> ReviewTally:
        """How much of the whole run this review decided and showed, whichever scope is on
        screen (a unit of the last iteration counts where the whole run holds it as is)."""
        whole = None if self.scope == "run" else await self.looptui.engine.patch(self.run_id, "run")
        return self._ledger.tally(self.selection, whole)

    @work(group="review-command", exclusive=True, exit_on_error=False)
    async def action_merge(self, squash: bool) -> None:
        engine = self.looptui.engine
        if not await self.take_kept_changes(unread="not merged"):
            return  # not on decisions that may be stale
        # "" rather than None: what this screen shows, the kept decisions just taken in
        reject = self.rejected_patch() or ""
        if reject and not self.selection.accepted() and not self.selection.undecided():
            self.notify("every change is rejected: discard the run instead (d)", severity="warning")
            return
        try:
            plan = await engine.preview(self.run_id, reject)
            tally = await self.review_tally()
        except LooptuiError as exc:
            self.notify(str(exc), title="cannot merge", severity="error")
            return
        counts = self.selection.counts()
        dialog = MergeScreen(self.run_id, plan, counts, squash, tally)
        # with nothing to merge the preview says so, and only goes back
        if not await self.app.push_screen_wait(dialog) or plan.nothing:
            return
        # kept by `looptui review` while the preview was up: what it showed would not land
        if not await self.take_kept_changes(unread="not merged"):
            return
        if (self.rejected_patch() or "") != reject:
            self.notify(
                "the review decisions changed while the preview was open (by `looptui "
                "review`); press m to see what would land now",
                title="not merged",
                severity="warning",
            )
            return
        try:
            # the dialog asked again, naming why, before it let a run not proven done through
            force = not plan.gate.allowed
            commit = await engine.merge(
                self.run_id, squash=squash, reject=reject, force=force, review=tally
            )
        except LooptuiError as exc:
            self.notify(str(exc), title="not merged", severity="error")
            return
        summary = self.looptui.board.summaries.get(self.run_id)
        loop = f"{summary.run.loop} " if summary is not None else ""
        self.notify(f"merged {loop}{self.run_id} into {plan.preview.base_branch} as {commit[:10]}")
        self.dismiss()

    @work(group="review-command", exclusive=True, exit_on_error=False)
    async def action_discard(self) -> None:
        question = (
            f"Discard run {self.run_id}? Its worktree and branch are deleted, "
            "with any work that was not merged."
        )
        if not await self.app.push_screen_wait(ConfirmScreen(question, "Discard")):
            return
        try:
            await self.looptui.engine.discard(self.run_id, force=True)
        except LooptuiError as exc:
            self.notify(str(exc), title="not discarded", severity="error")
            return
        self.notify(f"run {self.run_id} discarded")
        self.dismiss()
