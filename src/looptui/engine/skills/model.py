"""A skill as looptui holds it: its spec fields, where it was found, and its files on demand.

Only the name and the description are kept in memory (the spec's first tier of disclosure);
the body and the other files are read when asked for, so that a listing costs no more than
its descriptions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from looptui.engine.skills.frontmatter import split_frontmatter
from looptui.engine.user_files import read_regular_file
from looptui.engine.workspace.paths import confine

SkillSource = Literal["project", "user", "looptui"]
SKILL_FILE = "SKILL.md"
MAX_LISTED_FILES = 500  # of one skill's files(): a skill is a few files, not a tree to walk
MAX_READ_CHARS = 200_000  # of one file read through read_file


@dataclass(frozen=True)
class SkillProblem:
    """Why one SKILL.md was skipped: its file (as shown to the user), the field, the reason."""

    path: Path  # the SKILL.md, absolute
    shown: str  # the path as messages write it: relative to the repository, or with ~
    field: str  # "name", "description", "frontmatter", ...
    message: str

    def __str__(self) -> str:
        return f"{self.shown}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Skill:
    """A valid skill: a directory holding SKILL.md, found in one of the places looptui looks.

    `extras` holds the frontmatter keys the spec does not define (Claude Code's
    `when_to_use`, `argument-hint`, ...), as YAML gave them, so that a client that knows
    them can use them.
    """

    name: str
    description: str
    directory: Path
    source: SkillSource
    skill_md: Path
    shown: str  # the SKILL.md's path as messages write it
    license: str | None = None
    compatibility: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    allowed_tools: tuple[str, ...] = ()
    extras: Mapping[str, object] = field(default_factory=dict)

    def body(self) -> str:
        """The Markdown after the frontmatter, read from disk now (OSError if it is gone)."""
        _, body = split_frontmatter(read_regular_file(self.skill_md))
        return body.strip("\n") + "\n"

    def files(self) -> tuple[str, ...]:
        """The skill's other files, as paths relative to its directory, sorted: those beside
        SKILL.md and those one folder down (`references/REFERENCE.md`), as the spec keeps
        references one level deep. Hidden files are left out, and so is any symlink that
        leads out of the skill's directory."""
        root = self.directory.resolve()
        found: list[str] = []
        for name, path in _entries(root, root):
            if path.is_file():
                if name != SKILL_FILE:
                    found.append(name)
            elif path.is_dir():
                found.extend(
                    f"{name}/{inner}"
                    for inner, inner_path in _entries(path, root)
                    if inner_path.is_file()
                )
            if len(found) >= MAX_LISTED_FILES:
                return tuple(found[:MAX_LISTED_FILES])
        return tuple(found)

    def read_file(self, relative: str, limit: int = MAX_READ_CHARS) -> str:
        """The text of one of `files()` (or of SKILL.md), at most `limit` characters.

        Raises PathEscape (a ValueError) for a path that leaves the skill's directory,
        FileNotFoundError for one that `files()` does not list, and OSError or
        UnicodeDecodeError when it cannot be read as text.
        """
        path = confine(self.directory.resolve(), relative, f"the skill {self.name}'s folder")
        shown = path.relative_to(self.directory.resolve()).as_posix()
        if shown != SKILL_FILE and shown not in self.files():
            raise FileNotFoundError(f"{relative}: not a file of skill {self.name}")
        return read_regular_file(path)[:limit]


def _entries(directory: Path, root: Path) -> list[tuple[str, Path]]:
    """The visible entries of `directory` that stay inside `root` once symlinks resolve."""
    try:
        names = sorted(entry.name for entry in os.scandir(directory))
    except OSError:
        return []
    kept: list[tuple[str, Path]] = []
    for name in names:
        if name.startswith("."):
            continue
        path = directory / name
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):  # a dangling symlink, or a loop of them
            continue
        if real == root or root in real.parents:
            kept.append((name, real))
    return kept
