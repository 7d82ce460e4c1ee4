"""Git for looptui, through GitPython: worktrees per run, snapshots, diffs and reverts of
rejected hunks, on top of the repository core (core.py) and merging (merging.py).

Everything here is synchronous (git is a subprocess either way); the async engine calls it
through `asyncio.to_thread`. Nothing in this module touches the user's checkout: only
`merge` (merging.py) does, and that only after its preview said the merge is clean and safe.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from looptui.engine.errors import WorkspaceError
from looptui.engine.models import DiffStat
from looptui.engine.workspace.locations import ensure_directory
from looptui.engine.workspace.merging import Merging

AGENT_IDENTITY = {
    "GIT_AUTHOR_NAME": "looptui agent",
    "GIT_AUTHOR_EMAIL": "agent@looptui.invalid",
    "GIT_COMMITTER_NAME": "looptui agent",
    "GIT_COMMITTER_EMAIL": "agent@looptui.invalid",
}
# Commits looptui makes on a run's branch (checkpoints, reverts of rejected hunks) are never
# signed, so that a signing setup that needs a passphrase or a card cannot stop a run, and run
# none of the user's hooks: a post-commit hook (a push, a notification) is meant for the
# user's own commits, not for every iteration of an agent. The commit that lands a run on the
# user's branch is the user's, and follows their configuration.
RUN_COMMIT_CONFIG = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")


class Repository(Merging):
    """The user's repository, found from any directory inside it."""

    # -- worktrees -------------------------------------------------------------------------

    def create_worktree(self, path: Path, branch: str, base_commit: str) -> None:
        """Check out `base_commit` on a new `branch` in a new worktree at `path`."""
        ensure_directory(path.parent)
        with self._worktrees_locked():
            self._git("worktree", "add", "--quiet", "-b", branch, "--", str(path), base_commit)

    def remove_worktree(self, path: Path) -> None:
        with self._worktrees_locked():
            if path.exists() and self.is_worktree(path):
                self._git("worktree", "remove", "--force", "--force", "--", str(path))
            if path.exists():  # git leaves a directory behind if it held ignored files it kept
                shutil.rmtree(path, ignore_errors=True)
            self._git("worktree", "prune")

    def create_detached_checkout(self, path: Path, commit: str) -> None:
        """A worktree at `path` with `commit` checked out and no branch (the clean gate's)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._worktrees_locked():
            self._git("worktree", "add", "--quiet", "--detach", "--", str(path), commit)

    def reset_checkout(self, path: Path, commit: str, keep: Iterable[str] = ()) -> None:
        """Make the detached checkout at `path` hold exactly `commit`: tracked files reset,
        every untracked and ignored file removed except the top-level entries in `keep`
        (what the loop's setup made, such as `.venv` or `node_modules`)."""
        # Bound to the checkout (see `_bind`): a `git clean -ffdx` that found the user's
        # repository instead, because the checkout vanished, would delete their files.
        self._in_worktree(path, "checkout", "--quiet", "--force", "--detach", commit)
        excludes = [option for name in keep for option in ("-e", f"/{name}")]
        self._in_worktree(path, "clean", "-ffdxq", *excludes)

    def restore_worktree(self, path: Path, commit: str) -> None:
        """Put the run's worktree back at `commit`, on its branch: tracked files reset and
        untracked ones removed; files git ignores are left."""
        self._in_worktree(path, "reset", "--quiet", "--hard", commit)
        self._in_worktree(path, "clean", "-fdq")

    # -- prepared worktrees (pool.py) --------------------------------------------------------

    def detach_checkout(self, path: Path, commit: str) -> None:
        """Move the detached checkout at `path` to `commit`, rewriting only the files that
        differ; fails, changing nothing, when local changes would be overwritten."""
        self._in_worktree(path, "checkout", "--quiet", "--detach", commit)

    def checkout_state(self, path: Path) -> tuple[str, bool]:
        """The commit checked out at `path`, and whether the checkout holds nothing else: no
        change, no untracked file and no ignored one (a cache, a build output) that a run
        given this checkout would inherit."""
        # one git call: v2 porcelain heads its entries with "# branch.oid <commit>"
        status = self._in_worktree(
            path, "status", "--porcelain=v2", "--branch", "--ignored", "--no-renames"
        )
        return head_and_clean(status)

    def start_branch(self, path: Path, branch: str, commit: str) -> None:
        """Create `branch` at `commit`, the commit checked out at `path`, and put that
        checkout on it: a ref and HEAD are written, no file, not even the index (what
        `git switch -c` would do, without its walk of the tree). Refused when the branch
        exists (the all-zero old value)."""
        self._git("update-ref", "--create-reflog", f"refs/heads/{branch}", commit, "0" * 40)
        self._in_worktree(path, "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def move_worktree(self, source: Path, target: Path) -> None:
        """Move the worktree at `source` to `target` (a rename; git follows it)."""
        ensure_directory(target.parent)
        with self._worktrees_locked():
            self._git("worktree", "move", "--", str(source), str(target))

    def prune_worktrees(self) -> None:
        """Forget worktrees whose directories are gone."""
        with self._worktrees_locked():
            self._git("worktree", "prune")

    def untracked_entries(self, path: Path, ignored_only: bool = False) -> list[str]:
        """Untracked files of the checkout at `path` (ignored ones included), a directory
        that holds only such files named once with a trailing `/`."""
        args = ["ls-files", "--others", "--directory", "-z"]
        if ignored_only:
            args += ["--ignored", "--exclude-standard"]
        return [name for name in self._in_worktree(path, *args).split("\0") if name]

    def looptui_leftovers(self) -> tuple[list[str], list[Path]]:
        """Every looptui branch (`looptui/...`) and every worktree in this repository's
        worktrees directory, for telling them apart from what the store knows."""
        out = self._git("for-each-ref", "--format=%(refname)", "refs/heads/looptui/")
        branches = [ref.removeprefix("refs/heads/") for ref in out.splitlines() if ref]
        home = self.worktrees_dir.resolve()
        with self._worktrees_locked():
            listing = self._git("worktree", "list", "--porcelain")
        found = {
            Path(line.removeprefix("worktree ")).resolve()
            for line in listing.splitlines()
            if line.startswith("worktree ")
        }
        if home.is_dir():  # and those git forgot, but not other state kept there
            found |= {entry.resolve() for entry in home.iterdir() if (entry / ".git").exists()}
        return branches, sorted(path for path in found if path.parent == home)

    def delete_branch(self, branch: str) -> None:
        if self.branch_exists(branch):
            self._git("branch", "--quiet", "-D", "--", branch)

    def snapshot(self, worktree: Path) -> str:
        """The tree of everything in `worktree`: committed, staged, modified and untracked.

        Built in a private copy of the index, so the worktree's own index is left alone;
        copying the index keeps its stat cache, so unchanged files are not hashed again.
        """
        index = self._admin_dir(worktree) / "index"
        with tempfile.TemporaryDirectory(prefix="looptui-index-") as scratch:
            private = Path(scratch) / "index"
            if index.exists():
                shutil.copyfile(index, private)
            env = {"GIT_INDEX_FILE": str(private)}
            self._in_worktree(worktree, "add", "--all", "--", ".", env=env)
            return self._in_worktree(worktree, "write-tree", env=env).strip()

    def commit_all(self, worktree: Path, message: str) -> str | None:
        """Commit every change in `worktree` as the agent, unsigned and without the user's
        hooks (RUN_COMMIT_CONFIG); None when there was nothing to commit."""
        self._in_worktree(worktree, "add", "--all", "--", ".")
        status, _ = self._in_worktree_status(worktree, "diff", "--cached", "--quiet")
        if status == 0:
            return None
        self._in_worktree(
            worktree,
            *RUN_COMMIT_CONFIG,
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            message,
            env={**AGENT_IDENTITY},
        )
        return self.head_of(worktree)

    def head_of(self, worktree: Path) -> str:
        """The commit checked out in the run's `worktree`."""
        return self._in_worktree(worktree, "rev-parse", "HEAD").strip()

    # -- diffs -----------------------------------------------------------------------------

    def diff(self, base: str, target: str, color: bool = False) -> str:
        """Unified diff from commit `base` to tree or commit `target`."""
        return self._git(
            "diff", f"--color={'always' if color else 'never'}", "--no-ext-diff", base, target
        )

    def review_diff(self, base: str, target: str, context: int = 3) -> str:
        """The diff from commit `base` to tree or commit `target`, for `parse_patch`.

        Unlike `diff` it is made to be applied back with `git apply`: binary files carry
        their data, renames are found, and the settings of the user's config that would
        change the format (prefixes, external diff, textconv, zero context) are overridden.
        """
        return self._git(
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--binary",
            "-M",
            f"--unified={max(context, 1)}",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
            target,
        )

    def changed_paths(self, base: str, target: str) -> list[str]:
        """The paths that differ from commit `base` to `target`."""
        out = self._git("diff", "--name-only", "-z", "--no-renames", base, target)
        return [path for path in out.split("\0") if path]

    def diff_stat(self, base: str, target: str) -> DiffStat:
        out = self._git("diff", "--numstat", "--no-renames", base, target)
        files = added = removed = 0
        for line in out.splitlines():
            plus, minus, _ = line.split("\t", 2)
            files += 1
            # binary files show "-"; they count as a changed file with no lines
            added += int(plus) if plus.isdigit() else 0
            removed += int(minus) if minus.isdigit() else 0
        return DiffStat(files, added, removed)

    # -- discarding rejected hunks ---------------------------------------------------------

    def revert_hunks(self, head: str, patch_text: str, message: str) -> str:
        """A new commit on top of `head` whose tree is head's with `patch_text` taken out.

        `patch_text` is a patch whose new side `head` holds (as `build_patch` makes with
        `reverse=True` from a diff ending at `head`); it is applied with `git apply -R` to a
        private index, so no checkout and no index of the user's is touched, and no branch
        moves. Returns the new commit; raises WorkspaceError when the patch does not apply.
        """
        status, out = self._git_status("rev-parse", "--verify", "--quiet", f"{head}^{{commit}}")
        if status != 0:
            raise WorkspaceError(f"cannot revert changes on {head!r}: no such commit")
        commit = out.strip()
        if not patch_text.strip():
            raise WorkspaceError(f"no changes to revert on {commit[:12]}: the patch is empty")
        with tempfile.TemporaryDirectory(prefix="looptui-revert-") as scratch:
            patch_file = Path(scratch) / "rejected.patch"
            # git's output reached us decoded with surrogateescape; this gives back its bytes
            patch_file.write_bytes(patch_text.encode("utf-8", "surrogateescape"))
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self._git("read-tree", commit, env=env)
            try:
                self._git(
                    "apply",
                    "--cached",
                    "--reverse",
                    "--whitespace=nowarn",  # apply.whitespace=error must not refuse a revert
                    str(patch_file),
                    env=env,
                )
            except WorkspaceError as exc:
                raise WorkspaceError(
                    f"the changes to revert do not apply to {commit[:12]} ({exc}); "
                    "nothing was changed"
                ) from None
            tree = self._git("write-tree", env=env).strip()
        return self._git(
            *RUN_COMMIT_CONFIG,
            "commit-tree",
            tree,
            "-p",
            commit,
            "-m",
            message,
            env=self._user_identity(),
        ).strip()


def head_and_clean(status: str) -> tuple[str, bool]:
    """From `git status --porcelain=v2 --branch` output: the commit checked out, and whether
    no entry (change, untracked or ignored file) follows the `#` headers."""
    lines = status.splitlines()
    head = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "")
    return head, not any(line and not line.startswith("#") for line in lines)
