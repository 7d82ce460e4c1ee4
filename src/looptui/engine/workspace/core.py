"""The user's repository found from a directory, and git run in it or bound to one run's
worktree: what the parts of `Repository` (merging.py, repository.py) build on.

Everything here is synchronous (git is a subprocess either way); the async engine calls it
through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import git

from looptui.engine.errors import WorkspaceError
from looptui.engine.workspace.binding import admin_dir, bind
from looptui.engine.workspace.locations import worktrees_home

DATA_DIR_NAME = "looptui"  # inside the git common dir, where `git status` never looks
_FALLBACK_USER = {
    "GIT_AUTHOR_NAME": "looptui",
    "GIT_AUTHOR_EMAIL": "looptui@looptui.invalid",
    "GIT_COMMITTER_NAME": "looptui",
    "GIT_COMMITTER_EMAIL": "looptui@looptui.invalid",
}


class RepositoryCore:
    """The user's repository, found from any directory inside it, and the git calls and
    base-branch queries that worktrees, merges and reviews all need."""

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

    @contextlib.contextmanager
    def _worktrees_locked(self) -> Iterator[None]:
        """Hold the repository's worktree lock: git reads every worktree's metadata while it
        adds or prunes one, and fails on another's half-written entry, so worktree commands
        of all looptui processes and threads go one at a time."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / "worktrees.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

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

    def listed_files(self) -> list[str]:
        """The repository's files as git sees them: tracked, and untracked but not ignored."""
        out = self._git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        return [path for path in out.split("\0") if path]

    def commit_subject(self, commit: str) -> str:
        """The first line of a commit's message."""
        return self._git("log", "-1", "--format=%s", commit).strip()

    def commits_between(self, old: str, new: str) -> int:
        """How many commits `new` has that `old` has not."""
        return int(self._git("rev-list", "--count", f"{old}..{new}").strip() or 0)

    def branch_exists(self, branch: str) -> bool:
        status, _ = self._git_status("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return status == 0

    def tree_of(self, commitish: str) -> str:
        return self._git("rev-parse", f"{commitish}^{{tree}}").strip()

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


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:8]
