"""Git for looptui, through GitPython: worktrees per run, snapshots, diffs, merge and discard.

Everything here is synchronous (git is a subprocess either way); the async engine calls it
through `asyncio.to_thread`. Nothing in this module touches the user's checkout except
`merge`, and that only after its preview said the merge is clean and safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git

from looptui.engine.errors import MergeRefused, WorkspaceError
from looptui.engine.models import DiffStat
from looptui.engine.workspace.binding import admin_dir, bind
from looptui.engine.workspace.locations import ensure_directory, worktrees_home
from looptui.engine.workspace.merge_safety import operation_in_progress, untracked_obstacles

DATA_DIR_NAME = "looptui"  # inside the git common dir, where `git status` never looks
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
_PATHSPEC_CHUNK = 200  # paths per git command, well inside any argument limit
_FALLBACK_USER = {
    "GIT_AUTHOR_NAME": "looptui",
    "GIT_AUTHOR_EMAIL": "looptui@looptui.invalid",
    "GIT_COMMITTER_NAME": "looptui",
    "GIT_COMMITTER_EMAIL": "looptui@looptui.invalid",
}


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


class Repository:
    """The user's repository, found from any directory inside it."""

    def __init__(self, start: Path) -> None:
        try:
            self.repo = git.Repo(start, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise WorkspaceError(f"not a git repository: {start}") from None
        if self.repo.bare or self.repo.working_tree_dir is None:
            raise WorkspaceError(f"{start}: a bare repository has no checkout to run loops in")
        self.root = Path(self.repo.working_tree_dir).resolve()
        self.common_dir = Path(self.repo.common_dir).resolve()
        self.data_dir = self.common_dir / DATA_DIR_NAME
        self.worktrees_dir = worktrees_home() / f"{self.root.name}-{_digest(self.common_dir)}"
        self.store_path = self.data_dir / "store.db"

    def _runner(self, cwd: Path | None) -> git.Git:
        return git.Git(str(cwd or self.root))

    def _git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Run git and return stdout; raise WorkspaceError with git's own message on failure."""
        command = ["git", *args]
        try:
            output: str = self._runner(cwd).execute(command, env=env, strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            message = (exc.stderr or exc.stdout or str(exc)).strip().replace("\n", " ")
            message = message.removeprefix("stderr: ").strip("'").strip()
            raise WorkspaceError(f"git {_subcommand(args)} failed: {message}") from None
        return output

    def _git_status(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """Run git and return (exit status, stdout) without raising."""
        status, stdout, _ = self._runner(cwd).execute(
            ["git", *args],
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=False,
            env=env,
        )
        return int(status), stdout

    # -- git bound to a run's worktree (see binding.py) -----------------------------------

    def _bind(self, worktree: Path) -> tuple[tuple[str, ...], dict[str, str]]:
        return bind(self.common_dir, worktree)

    def _admin_dir(self, worktree: Path) -> Path:
        return admin_dir(self.common_dir, worktree)

    def is_worktree(self, path: Path) -> bool:
        """Whether `path` is still a worktree of this repository (see `_admin_dir`)."""
        try:
            self._admin_dir(path)
        except WorkspaceError:
            return False
        return True

    def _in_worktree(self, worktree: Path, *args: str, env: dict[str, str] | None = None) -> str:
        """`_git` bound to the run's `worktree` (see `_bind`)."""
        options, bound = self._bind(worktree)
        try:
            return self._git(*options, *args, cwd=worktree, env={**bound, **(env or {})})
        except WorkspaceError:
            self._admin_dir(worktree)  # "gone" says more than git's complaint about it
            raise

    def _in_worktree_status(self, worktree: Path, *args: str) -> tuple[int, str]:
        """`_git_status` bound to the run's `worktree` (see `_bind`)."""
        options, bound = self._bind(worktree)
        return self._git_status(*options, *args, cwd=worktree, env=bound)

    # -- the base --------------------------------------------------------------------------

    def require_commits(self) -> str:
        """The commit HEAD points at; a repository without commits cannot host runs."""
        status, out = self._git_status("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if status != 0:
            raise WorkspaceError(
                f"{self.root}: the repository has no commits yet; commit something first"
            )
        return out.strip()

    def current_branch(self) -> str:
        self.require_commits()
        status, out = self._git_status("symbolic-ref", "--quiet", "--short", "HEAD")
        if status != 0:
            raise WorkspaceError(
                f"{self.root}: HEAD is detached; check out a branch or set the loop's base"
            )
        return out.strip()

    def branch_commit(self, branch: str) -> str:
        status, out = self._git_status(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"
        )
        if status != 0:
            raise WorkspaceError(f"no branch {branch!r} in {self.root}")
        return out.strip()

    def branch_exists(self, branch: str) -> bool:
        status, _ = self._git_status("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return status == 0

    # -- worktrees -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _worktrees_locked(self) -> Iterator[None]:
        """Hold the repository's worktree lock: git reads every worktree's metadata while it
        adds or prunes one, and fails on another's half-written entry, so worktree commands
        of all looptui processes and threads go one at a time."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / "worktrees.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

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

    def tree_of(self, commitish: str) -> str:
        return self._git("rev-parse", f"{commitish}^{{tree}}").strip()

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

    # -- merge and discard -----------------------------------------------------------------

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

    def is_merged(self, base_branch: str, head: str) -> bool:
        """True when merging `head` would change nothing on `base_branch`.

        This holds after a merge, after a squash merge (whose commit is no ancestor) and when
        the same change arrived any other way: trees are compared, not ancestry.
        """
        preview = self.preview_merge(base_branch, head)
        return preview.clean and preview.tree == self.tree_of(preview.base_tip)

    def _user_identity(self) -> dict[str, str]:
        """The user's git identity when configured, else a neutral one, for merge commits."""
        reader = self.repo.config_reader()
        if reader.has_option("user", "name") and reader.has_option("user", "email"):
            return {}
        return {k: v for k, v in _FALLBACK_USER.items() if k not in os.environ}


def _subcommand(args: tuple[str, ...]) -> str:
    """The git command among `args`, past global options such as `-c name=value`."""
    words = iter(args)
    for word in words:
        if word == "-c":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return args[0] if args else "git"


def _without_suffix(name: str, suffixes: Iterable[str]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _status_paths(porcelain_z: str) -> set[str]:
    """The paths of `git status --porcelain=v1 -z --no-renames` entries ("XY path")."""
    return {entry[3:] for entry in porcelain_z.split("\0") if len(entry) > 3}


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:8]
