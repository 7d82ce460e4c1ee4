"""Git bound to a run's worktree, and to nothing else.

A run's worktree can vanish under a run (an agent's `rm -rf .`, a user cleaning up). Git run
"in" it then would search the parent directories for a repository, and GitPython even falls
back to looptui's own working directory when the cwd is gone: either way git would find the
user's checkout and commit their work as the agent. So every git call meant for a worktree
first proves the directory is that worktree, then names its git dir and work tree
explicitly, with discovery fenced off.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from looptui.engine.errors import WorkspaceError

# Variables that would steer git's repository discovery away from the directory it runs in.
_DISCOVERY_VARIABLES = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_PREFIX",
    }
)


def bind(common_dir: Path, worktree: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """The global options and environment that tie git to `worktree` and nothing else;
    WorkspaceError when `worktree` is no longer a worktree of this repository."""
    admin = admin_dir(common_dir, worktree)
    work_tree = str(worktree.resolve())
    options = (f"--git-dir={admin}", f"--work-tree={work_tree}")
    env = {
        "GIT_DIR": str(admin),
        "GIT_WORK_TREE": work_tree,
        "GIT_COMMON_DIR": str(common_dir),
        "GIT_INDEX_FILE": str(admin / "index"),
        "GIT_CEILING_DIRECTORIES": str(Path(work_tree).parent),
    }
    return options, env


def admin_dir(common_dir: Path, worktree: Path) -> Path:
    """The admin dir (`<common dir>/worktrees/<name>`) of `worktree`, after checking that
    its `.git` file leads there and back, and that git itself sees `worktree` as a
    worktree top level of this repository."""
    gone = WorkspaceError(f"the worktree of run {worktree.name} is gone: {worktree}")
    dot_git = worktree / ".git"
    try:
        text = dot_git.read_text(encoding="utf-8") if _regular(dot_git) else ""
    except (OSError, UnicodeDecodeError):
        text = ""
    if not text.startswith("gitdir:"):
        raise gone
    admin = Path(text.removeprefix("gitdir:").strip())
    admin = (admin if admin.is_absolute() else worktree / admin).resolve()
    if admin.parent != common_dir / "worktrees":
        raise gone
    try:  # git's own record of where this worktree is must agree
        back = Path((admin / "gitdir").read_text(encoding="utf-8").strip()).resolve()
    except (OSError, UnicodeDecodeError):
        raise gone from None
    real = worktree.resolve()
    if back != real / ".git":
        raise gone
    # Git's discovery, fenced at the worktree's parent: nothing above can answer.
    environ = {k: v for k, v in os.environ.items() if k not in _DISCOVERY_VARIABLES}
    environ["GIT_CEILING_DIRECTORIES"] = str(real.parent)
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--absolute-git-dir"],
            cwd=real,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # the directory went away just now
        raise gone from None
    lines = found.stdout.splitlines()
    if found.returncode != 0 or len(lines) != 2:
        raise gone
    if Path(lines[0]).resolve() != real or Path(lines[1]).resolve() != admin:
        raise gone
    return admin


def _regular(path: Path) -> bool:
    """A regular file, not a symlink to one (a worktree's `.git` file is never a link)."""
    return path.is_file() and not path.is_symlink()
