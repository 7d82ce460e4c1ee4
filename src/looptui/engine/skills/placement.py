"""Skills placed in a CLI agent's working directory for one turn, invisible to git.

Claude Code and Codex discover project skills in their working directory (`.claude/skills/`,
`.agents/skills/`). For a turn, each chosen skill is copied to `<root>/<name>/`, with a
`.gitignore` of `*` beside it: git then ignores the whole folder (that file too), so the
copy never shows in `git status`, is never added by `commit_all` (nor by an agent's own
`git add -A`), and so never reaches the run's diff, the tamper guard, the clean gate or a
merge. Nothing in the user's git config or `.git/info/exclude` changes. The folders (and
the parents this made) are removed when the turn ends, so that no check or scan after it
sees them; a copy left by a killed turn is recognised by its marker and replaced next time.

A skill folder that is already there (tracked by the repository, or the agent's own) is
left alone: the repository's version is what that CLI uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from looptui.engine.skills.model import SKILL_FILE, Skill
from looptui.engine.workspace.paths import confine

MARKER = ".gitignore"
MARKER_TEXT = (
    "# Placed by looptui for one agent turn and removed when it ends; never committed.\n*\n"
)


@dataclass
class Placed:
    """What one placement made: the skill folders, and the parent folders it created."""

    folders: list[Path]
    parents: list[Path]

    def remove(self) -> None:
        """Remove the placed folders, then the parents this made if they are empty now."""
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        for parent in reversed(self.parents):  # the deepest first
            with contextlib.suppress(OSError):  # not empty: something else lives there now
                parent.rmdir()


def is_placed(folder: Path) -> bool:
    """Whether `folder` is a copy looptui placed (its marker says so)."""
    try:
        return (folder / MARKER).read_text(encoding="utf-8") == MARKER_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def place_skills(worktree: Path, root: str, skills: Sequence[Skill]) -> Placed:
    """Copy `skills` to `worktree/root/<name>/`, each marked to be ignored by git; a folder
    already there that is not a copy of looptui's is left as it is. Raises OSError (or
    PathEscape when `root` leads outside the worktree through a link)."""
    placed = Placed([], [])
    if not skills:
        return placed
    base = confine(worktree, root)
    missing = [base, *base.parents]
    for directory in reversed(missing[: missing.index(worktree.resolve())]):
        if not directory.exists():
            directory.mkdir()
            placed.parents.append(directory)
    try:
        for skill in skills:
            target = confine(worktree, f"{root}/{skill.name}")
            if is_placed(target):  # left by a turn that was killed: replace it
                shutil.rmtree(target)
            if os.path.lexists(target):
                continue
            target.mkdir()
            placed.folders.append(target)
            (target / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
            for relative in (SKILL_FILE, *skill.files()):
                source = skill.directory / relative
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)  # a file's content, never a link
    except BaseException:
        placed.remove()
        raise
    return placed


@contextlib.contextmanager
def skills_placed(worktree: Path, root: str | None, skills: Sequence[Skill]) -> Iterator[Placed]:
    """The skills placed for the block (none when `root` is None), removed when it ends."""
    placed = place_skills(worktree.resolve(), root, skills) if root else Placed([], [])
    try:
        yield placed
    finally:
        placed.remove()
