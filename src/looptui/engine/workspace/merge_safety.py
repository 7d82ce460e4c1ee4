"""What must hold before a merge moves a branch: no git operation under way on it anywhere,
and nothing untracked in the way of what the merge writes.

Plain reads of git's own state files, so that they cost nothing and take no lock of git's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

# The state file (or directory) a stopped git command leaves in a worktree's git dir.
_MARKERS = (
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or `git am`"),
    ("MERGE_HEAD", "a merge"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
    ("BISECT_LOG", "a bisect"),
)


def operation_in_progress(common_dir: Path, branch: str) -> str | None:
    """A one-line description of a rebase, merge, cherry-pick, revert or bisect of `branch`
    under way in any worktree of the repository whose git common dir is `common_dir`; None
    when there is none.

    During a rebase or a bisect the branch is not checked out (HEAD is detached), so the
    branch they started from is read from `head-name` and `BISECT_START`, as git does.
    """
    ref = f"refs/heads/{branch}"
    for git_dir, checkout in _worktrees(common_dir):
        on_branch = _read(git_dir / "HEAD") == f"ref: {ref}"
        for marker, what in _MARKERS:
            if not (git_dir / marker).exists():
                continue
            started = {_read(git_dir / marker / "head-name"), _read(git_dir / "BISECT_START")}
            if on_branch or ref in started or branch in started:
                return (
                    f"{branch} has {what} in progress in {checkout}; finish or abort it first "
                    "(nothing was changed)"
                )
    return None


def untracked_obstacles(checkout: Path, changed: Iterable[str]) -> dict[str, str]:
    """{obstacle: path}: a file or symlink in `checkout` that sits where a `changed` path
    needs a directory (the merge writes `a/b`, the checkout has a file `a` that the merge
    does not change, so it is untracked or ignored). Git would refuse the fast-forward."""
    changed = set(changed)
    found: dict[str, str] = {}
    for path in sorted(changed):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in changed or prefix in found:
                continue
            full = checkout / prefix
            if full.is_symlink() or (full.exists() and not full.is_dir()):
                found[prefix] = path
                break
    return found


def _worktrees(common_dir: Path) -> Iterator[tuple[Path, Path]]:
    """(git dir, checkout) of the main worktree and of each linked one."""
    yield common_dir, common_dir.parent
    linked = common_dir / "worktrees"
    if not linked.is_dir():
        return
    for git_dir in sorted(linked.iterdir()):
        gitdir_file = _read(git_dir / "gitdir")  # the path of the checkout's `.git` file
        yield git_dir, Path(gitdir_file).parent if gitdir_file else git_dir


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # absent, or a directory
        return ""
