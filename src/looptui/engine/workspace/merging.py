"""Merging a run's head into its base branch: the preview (`git merge-tree`, no checkout
moves), the merge lock, and `merge`, the one place looptui touches the user's checkout, and
only after a fresh preview under the lock said the merge is clean and safe (merge_safety.py).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from looptui.engine.errors import MergeRefused, WorkspaceError
from looptui.engine.workspace.core import RepositoryCore
from looptui.engine.workspace.merge_safety import operation_in_progress, untracked_obstacles

_PATHSPEC_CHUNK = 200  # paths per git command, well inside any argument limit


@dataclass(frozen=True)
class MergePreview:
    """What merging `head` into `base_branch` would do, computed without touching a checkout."""

    base_branch: str
    base_tip: str
    head: str
    tree: str
    conflicts: tuple[str, ...]
    changed_files: tuple[str, ...]  # files the merge changes on the base branch

    @property
    def clean(self) -> bool:
        return not self.conflicts

    @property
    def is_noop(self) -> bool:
        return self.clean and not self.changed_files


class Merging(RepositoryCore):
    """Previews, merges and the merge lock of the repository; `Repository` inherits them."""

    def preview_merge(self, base_branch: str, head: str) -> MergePreview:
        """Merge `head` into `base_branch` with `git merge-tree`: no checkout moves."""
        base_tip = self.branch_commit(base_branch)
        # -z everywhere: names come whole and unquoted (spaces, newlines, non-ASCII), as
        # `dirty_files` has them.
        status, out = self._git_status(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", base_tip, head
        )
        if status not in (0, 1):
            raise WorkspaceError(f"git merge-tree failed for {head[:12]}: {out.strip()}")
        tree, *names = out.split("\0")
        tree = tree.strip()
        # a file/directory clash moves the file aside as `<path>~<commit>`: name the path
        aside = (f"~{base_tip}", f"~{head}")
        conflicts = tuple(dict.fromkeys(_without_suffix(name, aside) for name in names if name))
        changed: tuple[str, ...] = ()
        if status == 0:
            out = self._git("diff", "--name-only", "-z", "--no-renames", base_tip, tree)
            changed = tuple(name for name in out.split("\0") if name)
        return MergePreview(base_branch, base_tip, head, tree, conflicts, changed)

    def checkout_of(self, branch: str) -> Path | None:
        """The worktree (the user's main checkout or another) where `branch` is checked out."""
        with self._worktrees_locked():
            out = self._git("worktree", "list", "--porcelain")
        path: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                path = Path(line.removeprefix("worktree "))
            elif line == f"branch refs/heads/{branch}" and path is not None:
                return path
        return None

    def dirty_files(self, checkout: Path, paths: Iterable[str] | None = None) -> set[str]:
        """Paths with uncommitted changes or untracked files in `checkout`.

        With `paths`, only those among them, and ignored files among them count too: a merge
        that writes a path would overwrite an ignored file there as well.
        """
        status = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]
        if paths is None:
            return _status_paths(self._git(*status, cwd=checkout))
        wanted = sorted(set(paths))
        found: set[str] = set()
        for start in range(0, len(wanted), _PATHSPEC_CHUNK):
            pathspecs = [f":(literal){path}" for path in wanted[start : start + _PATHSPEC_CHUNK]]
            out = self._git(*status, "--ignored=matching", "--", *pathspecs, cwd=checkout)
            found |= _status_paths(out)
        return found

    @contextlib.contextmanager
    def _merges_locked(self) -> Iterator[None]:
        """Hold the repository's merge lock: two merges into one branch at once would both
        build on the same tip, and the second would move the branch from under the first
        (or fail in git's words), so merges of all looptui processes go one at a time."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / "merge.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def merge(self, preview: MergePreview, message: str, squash: bool) -> str:
        """Land a clean preview on its base branch as a merge commit or a squash commit.

        Under the merge lock the merge is previewed again (the branch may have moved since),
        then refused, changing nothing, when it conflicts, when the branch is being rebased,
        merged, cherry-picked, reverted or bisected in any worktree, or when the checkout of
        the base branch has uncommitted changes or untracked files where the merge writes.
        """
        with self._merges_locked():
            return self._merge_locked(preview.base_branch, preview.head, message, squash)

    def _merge_locked(self, base: str, head: str, message: str, squash: bool) -> str:
        busy = operation_in_progress(self.common_dir, base)
        if busy:
            raise MergeRefused(busy)
        preview = self.preview_merge(base, head)
        if not preview.clean:
            raise MergeRefused(
                f"merging into {base} would conflict in "
                f"{', '.join(preview.conflicts)}; nothing was changed"
            )
        if preview.is_noop:
            raise MergeRefused(f"{base} already holds these changes; nothing was changed")
        checkout = self.checkout_of(base)
        if checkout is not None:
            touched = self.dirty_files(checkout, preview.changed_files)
            if touched:
                raise MergeRefused(
                    f"your checkout of {base} has uncommitted changes or "
                    f"ignored files the merge would overwrite: {', '.join(sorted(touched))}; "
                    "commit, stash or move them first (nothing was changed)"
                )
            obstacles = untracked_obstacles(checkout, preview.changed_files)
            if obstacles:
                where = ", ".join(f"{name} (for {path})" for name, path in obstacles.items())
                raise MergeRefused(
                    f"your checkout of {base} has untracked files where the merge needs "
                    f"directories: {where}; move them first (nothing was changed)"
                )
        parents = ["-p", preview.base_tip] + ([] if squash else ["-p", preview.head])
        commit = self._git(
            "commit-tree", preview.tree, *parents, "-m", message, env=self._user_identity()
        ).strip()
        try:
            if checkout is not None:
                # A fast-forward moves the branch and updates only the files the merge
                # changed; git refuses it rather than overwrite a local change.
                self._git("merge", "--quiet", "--ff-only", commit, cwd=checkout)
            else:  # the old value makes git refuse if the branch moved meanwhile
                self._git("update-ref", f"refs/heads/{base}", commit, preview.base_tip)
        except WorkspaceError as exc:
            if self.branch_commit(base) != preview.base_tip:
                raise MergeRefused(
                    f"{base} moved while the merge was being made; nothing was changed, merge again"
                ) from None
            raise MergeRefused(f"{base} was not changed: {exc}") from None
        return commit

    def is_merged(self, base_branch: str, head: str) -> bool:
        """True when merging `head` would change nothing on `base_branch`.

        This holds after a merge, after a squash merge (whose commit is no ancestor) and when
        the same change arrived any other way: trees are compared, not ancestry.
        """
        preview = self.preview_merge(base_branch, head)
        return preview.clean and preview.tree == self.tree_of(preview.base_tip)


def _without_suffix(name: str, suffixes: Iterable[str]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _status_paths(porcelain_z: str) -> set[str]:
    """The paths of `git status --porcelain=v1 -z --no-renames` entries ("XY path")."""
    return {entry[3:] for entry in porcelain_z.split("\0") if len(entry) > 3}
