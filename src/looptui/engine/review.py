"""The review side of `Engine`: a run's diff to read, and its work landed or dropped.

What may land and how a refusal is worded is decided in `landing`; this is the mechanics
(worktrees, branches, commits) around it, as methods `Engine` inherits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from looptui.engine.config import Config, HookEvent
from looptui.engine.errors import LooptuiError, MergeRefused
from looptui.engine.hooks import Hooks
from looptui.engine.landing import (
    MergeGate,
    MergePlan,
    NothingWhy,
    merge_gate,
    nothing_to_merge,
    undecided_refusal,
)
from looptui.engine.memory.keeping import remember_rejected
from looptui.engine.models import ReviewTally, Run, RunStatus
from looptui.engine.store import Store
from looptui.engine.workspace import (
    HunkKey,
    KeptDecision,
    Patch,
    Repository,
    Selection,
    parse_patch,
    shown_in,
)
from looptui.engine.workspace.own_writes import OwnWrites
from looptui.protocol.commands import DiffScope
from looptui.protocol.events import StatusChanged
from looptui.words import counted


class ReviewMixin:
    """Diffs, merge previews, merges and discards of a run that has stopped."""

    repository: Repository
    store: Store
    own_writes: OwnWrites
    config: Config | None
    environ: Mapping[str, str]

    async def diff(self, prefix: str, color: bool = False) -> str:
        """The run's diff against its base: committed, uncommitted and untracked changes."""
        run = await self.store.find_run(prefix)
        worktree = Path(run.worktree)
        if run.status.has_workspace and await asyncio.to_thread(worktree.is_dir):
            target = await asyncio.to_thread(self.repository.snapshot, worktree)
        elif run.head_commit:
            target = run.head_commit
        else:
            return ""
        text = await asyncio.to_thread(self.repository.diff, run.base_commit, target, color)
        return self.store.redactor.text(text)  # shown, never applied: secrets stay out

    async def patch(self, prefix: str, scope: DiffScope = "run") -> Patch:
        """The run's diff as a Patch for review: of the whole run, or of its last iteration.

        A live worktree's uncommitted and untracked changes are part of either scope.
        """
        return parse_patch(await self.review_diff(prefix, scope))

    async def review_diff(self, prefix: str, scope: DiffScope = "run") -> str:
        """The text of `patch`'s diff (what the service sends its clients to parse)."""
        run = await self.store.find_run(prefix)
        base: str | None = run.base_commit
        if scope == "last":
            iterations = await self.store.iterations(run.id)
            last = iterations[-1].commit if iterations else None
            # an iteration that changed nothing has no commit: its diff is empty (but for
            # what is left uncommitted in a live worktree)
            base = f"{last}^" if last else run.head_commit
        worktree = Path(run.worktree)
        if run.status.has_workspace and await asyncio.to_thread(worktree.is_dir):
            target: str | None = await asyncio.to_thread(self.repository.snapshot, worktree)
        else:
            target = run.head_commit
        if base is None or target is None:
            return ""
        return await asyncio.to_thread(self.repository.review_diff, base, target)

    async def preview(self, prefix: str, reject: str | None = None) -> MergePlan:
        """What merging the run would do (conflicts, files), with `reject` left out, and
        whether its last verdict lets it land (`MergePlan.gate`).

        `reject` None: the decisions kept for the run (`looptui review`) say what is left
        out, and `MergePlan.review` how much of the run they cover. No checkout of the
        user's moves and the base branch does not change; work the agent left uncommitted
        in the run's worktree is committed on the run's branch first, as a merge would.
        """
        run = await self._reviewable(prefix, "merge")
        gate = await self.merge_gate(run)
        tally = None
        if reject is None:
            selection, shown = await self.kept_review(run.id)
            reject, tally = selection.rejected_patch(), selection.tally(shown)
        head = await self._landing_commit(run, reject)
        preview = await asyncio.to_thread(self.repository.preview_merge, run.base_branch, head)
        nothing = None
        if preview.is_noop:
            nothing = nothing_to_merge(run, await asyncio.to_thread(self._why_nothing, run, head))
        required = self.config is not None and self.config.require_decisions
        return MergePlan(preview, gate, nothing, tally, required)

    async def kept_selection(self, prefix: str) -> Selection:
        """The decisions kept on the run's whole diff (`save_review`), over that diff as it
        is now: a unit changed since they were taken is undecided."""
        selection, _shown = await self.kept_review(prefix)
        return selection

    async def kept_review(self, prefix: str) -> tuple[Selection, frozenset[HunkKey]]:
        """`kept_selection`, and the units of the run's whole diff kept as shown under the
        review cursor (by the review screen, in this session or an earlier one)."""
        run = await self.store.find_run(prefix)
        patch = await self.patch(run.id, "run")
        kept = await self.store.review_decisions(run.id)
        return Selection.from_data(patch, kept), shown_in(patch, kept)

    async def save_review(
        self, prefix: str, selection: Selection, shown: Collection[HunkKey] = ()
    ) -> None:
        """Keep `selection`'s decisions (over the run's whole diff) for a later merge or
        review to take, with the units of it `shown` under the review cursor."""
        await self.save_review_decisions(prefix, selection.to_data(shown))

    async def review_decisions(self, prefix: str) -> list[KeptDecision]:
        """The decisions kept for the run (`Selection.to_data` of its whole diff), for
        `Selection.from_data` over that diff; [] when none are."""
        run = await self.store.find_run(prefix)
        return await self.store.review_decisions(run.id)

    async def save_review_decisions(self, prefix: str, decisions: Sequence[KeptDecision]) -> None:
        """Keep `decisions` (`Selection.to_data` of the run's whole diff) for the run,
        replacing those kept before."""
        run = await self.store.find_run(prefix)
        await self.store.save_review_decisions(run.id, decisions)

    async def merge_gate(self, run: Run) -> MergeGate:
        """Whether `run` may land without force: its status and last verdict say done."""
        return merge_gate(run, await self.store.verdicts(run.id))

    async def merge(
        self,
        prefix: str,
        squash: bool = False,
        reject: str | None = None,
        force: bool = False,
        review: ReviewTally | None = None,
    ) -> str:
        """Land a run on its base branch (merge commit or squash); returns the new commit.

        A run whose last verdict is not done (or whose status says it failed, stalled...) is
        refused unless `force`. `reject` is a patch of the changes the reviewer turned down
        (as `Selection.rejected_patch` makes from the run's diff): they are reverted in a
        commit of their own on top of the run, so that only the accepted changes land; None
        takes the decisions kept for the run (`save_review`). `review` says how much of the
        run the reviewer covered (None: as the kept decisions do); it is recorded with the
        run, and with `[review] require_decisions` an undecided hunk refuses the merge, even
        forced. The merge is previewed first; a conflict, or uncommitted changes in the base
        checkout among the files involved, refuses it with nothing changed. So does a
        before_merge hook that exits 2 (HookRefused, worded from its stderr).
        """
        run = await self._reviewable(prefix, "merge")
        repository = self.repository
        if await asyncio.to_thread(self._changed_nothing, run):
            raise MergeRefused(nothing_to_merge(run, "unchanged"))
        gate = await self.merge_gate(run)
        if not gate.allowed and not force:
            raise MergeRefused(gate.refusal)
        if reject is None:
            selection, shown = await self.kept_review(run.id)
            reject, review = selection.rejected_patch(), review or selection.tally(shown)
        if self.config is not None and self.config.require_decisions:
            refusal = undecided_refusal(run.id, review)
            if refusal:
                raise MergeRefused(refusal)
        head = await self._landing_commit(run, reject)
        preview = await asyncio.to_thread(repository.preview_merge, run.base_branch, head)
        if preview.is_noop:
            why = await asyncio.to_thread(self._why_nothing, run, head)
            raise MergeRefused(nothing_to_merge(run, why))
        await self._before_merge(run, preview.changed_files, head, squash, force)
        summary = run.prompt.strip().splitlines()[0][:72] if run.prompt.strip() else run.loop
        if squash:
            message = (
                f"{run.loop}: {summary}\n\nSquashed from looptui run {run.id} "
                f"({counted(run.iterations, 'iteration')}, branch {run.branch})."
            )
        else:
            message = f"Merge looptui run {run.id} ({run.loop}): {summary}"
        commit = await asyncio.to_thread(repository.merge, preview, message, squash)
        checkout = await asyncio.to_thread(repository.checkout_of, run.base_branch)
        if checkout is not None:  # what the merge wrote there fires no `watch` trigger
            self.own_writes.record(checkout, preview.changed_files)
        # From now on the run's diff is what landed (the iterations keep what the agent did).
        landed = await asyncio.to_thread(repository.diff_stat, run.base_commit, head)
        await self.store.update_run(
            run.id, diff_files=landed.files, diff_added=landed.added, diff_removed=landed.removed
        )
        if review is not None:
            await self.store.record_review(run.id, review)
        await self._retire(run, RunStatus.MERGED, head)
        if reject:  # what the human turned down is a lesson for the loop's later runs
            loop = self.config.loops.get(run.loop) if self.config else None
            await remember_rejected(self.store, run, reject, loop)
        return commit

    async def _before_merge(
        self, run: Run, files: tuple[str, ...], head: str, squash: bool, force: bool
    ) -> None:
        """The run's before_merge hooks, once the merge is known to be possible and before it
        changes the base branch; HookRefused when one exits 2."""
        hooks = Hooks(
            self.config.hooks_of(run.loop) if self.config else (),
            self.store,
            self.environ,
            self.repository.root,
        )
        await hooks.fire(
            HookEvent.BEFORE_MERGE,
            run,
            status=run.status,
            iteration=run.iterations,
            mode="squash" if squash else "merge",
            files=list(files),
            commit=head,
            force=force,
        )

    def _changed_nothing(self, run: Run) -> bool:
        """True when the run's own diff (base commit to branch and worktree) is empty;
        nothing is committed to find out."""
        repository = self.repository
        worktree = Path(run.worktree)
        if worktree.is_dir():
            tree = repository.snapshot(worktree)
        elif repository.branch_exists(run.branch):
            tree = repository.tree_of(repository.branch_commit(run.branch))
        else:
            return False  # no work to look at: let the merge say what is missing
        return tree == repository.tree_of(run.base_commit)

    def _why_nothing(self, run: Run, head: str) -> NothingWhy:
        """Why merging `head` (the run's landing commit) would change nothing."""
        repository = self.repository
        base_tree = repository.tree_of(run.base_commit)
        if repository.tree_of(repository.branch_commit(run.branch)) == base_tree:
            return "unchanged"
        if repository.tree_of(head) == base_tree:
            return "rejected"
        return "merged"

    async def _landing_commit(self, run: Run, reject: str | None) -> str:
        """The commit that a merge of the run lands: its branch with leftovers committed,
        then the rejected changes reverted."""
        worktree = Path(run.worktree)
        repository = self.repository
        if await asyncio.to_thread(worktree.is_dir):  # what the diff showed is what lands
            await asyncio.to_thread(
                repository.commit_all, worktree, f"{run.loop}: work left uncommitted at merge"
            )
        head = await asyncio.to_thread(repository.branch_commit, run.branch)
        if reject and reject.strip():
            message = f"{run.loop}: leave out the changes rejected in review"
            head = await asyncio.to_thread(repository.revert_hunks, head, reject, message)
        return head

    async def discard(self, prefix: str, force: bool = False) -> None:
        """Remove a run's worktree and branch; refuses without `force` if work would be lost."""
        run = await self._reviewable(prefix, "discard")
        if not force:
            unmerged = await asyncio.to_thread(self._unmerged_work, run)
            if unmerged:
                raise LooptuiError(
                    f"run {run.id} holds work not merged into {run.base_branch} ({unmerged}); "
                    "use --force to discard it anyway"
                )
        head = run.head_commit
        if self.repository.branch_exists(run.branch):
            head = await asyncio.to_thread(self.repository.branch_commit, run.branch)
        await self._retire(run, RunStatus.DISCARDED, head)

    def _unmerged_work(self, run: Run) -> str | None:
        """A description of the run's work that its base branch lacks, or None."""
        repository = self.repository
        worktree = Path(run.worktree)
        head = (
            repository.branch_commit(run.branch) if repository.branch_exists(run.branch) else None
        )
        if (
            worktree.is_dir()
            and head is not None
            and repository.snapshot(worktree) != repository.tree_of(head)
        ):
            return "uncommitted changes in its worktree"
        if head is None or head == run.base_commit:
            return None
        if not repository.branch_exists(run.base_branch):
            return f"{run.base_branch} no longer exists"
        if repository.is_merged(run.base_branch, head):
            return None
        return str(repository.diff_stat(run.base_commit, head))

    async def _reviewable(self, prefix: str, action: str) -> Run:
        await self.store.mark_interrupted()
        run = await self.store.find_run(prefix)
        if run.status.is_active:
            raise LooptuiError(f"run {run.id} is still {run.status}; stop it before you {action}")
        if not run.status.has_workspace:
            raise LooptuiError(f"run {run.id} is already {run.status}")
        return run

    async def _retire(self, run: Run, status: RunStatus, head: str | None) -> None:
        await asyncio.to_thread(self.repository.remove_worktree, Path(run.worktree))
        await asyncio.to_thread(self.repository.delete_branch, run.branch)
        await self.store.update_run(run.id, status=status, head_commit=head)
        self.store.emit(run.id, StatusChanged(status))
        await self.store.flush()
