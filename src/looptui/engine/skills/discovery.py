"""Finding skills: the places looptui looks, in precedence order, scanned within bounds.

Project skills first (the repository's `skills/`, `.claude/skills/`, `.agents/skills/`), then
the user's (`~/.claude/skills`, `~/.agents/skills`), then the ones looptui ships. The first
skill of a name wins; every other one of that name is reported as shadowed, naming both
paths, since a skill replaced without a word is one of the failures users report (see
shared/reference/field-notes.md §4). An invalid skill is a problem and is skipped; nothing
here raises for what it finds on disk.

The scan is bounded as the client guide suggests: four levels below each root, 2,000
directories in all, never into `.git`, `node_modules` or hidden directories.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from looptui.engine.skills.model import SKILL_FILE, Skill, SkillProblem, SkillSource
from looptui.engine.skills.validation import parse_skill

MAX_DEPTH = 4  # directory levels below a root where a skill's directory may be
MAX_DIRECTORIES = 2_000  # looked into, over all roots
SKIPPED_DIRECTORIES = frozenset({".git", "node_modules", "__pycache__"})
PROJECT_ROOTS = ("skills", ".claude/skills", ".agents/skills")
USER_ROOTS = (".claude/skills", ".agents/skills")
# looptui's own: `src/looptui/_skills` is a link to the project's top-level `skills/` in a
# source checkout, and a copy of it in an installed package (see pyproject.toml).
SHIPPED_SKILLS = Path(__file__).resolve().parents[2] / "_skills"


@dataclass(frozen=True)
class SkillRoot:
    """A directory skills are looked for in, and how messages name it."""

    path: Path
    source: SkillSource
    shown: str


@dataclass(frozen=True)
class Catalogue:
    """What discovery found: the skills that count (the first of each name, in precedence
    order), the warnings (skills shadowed, a scan cut short), the problems (invalid skills,
    skipped), and the places it looked."""

    skills: tuple[Skill, ...] = ()
    warnings: tuple[str, ...] = ()
    problems: tuple[SkillProblem, ...] = ()
    roots: tuple[SkillRoot, ...] = field(default=())

    def get(self, name: str) -> Skill | None:
        """The skill called `name`, or None."""
        return next((skill for skill in self.skills if skill.name == name), None)

    def problems_of(self, name: str) -> tuple[SkillProblem, ...]:
        """The problems of the invalid skills whose directory is called `name`."""
        return tuple(problem for problem in self.problems if problem.path.parent.name == name)

    def searched(self) -> str:
        """The places looked in, for a message: "skills, .claude/skills, ..."."""
        return ", ".join(root.shown for root in self.roots)


def skill_roots(
    repository: Path, home: Path | None = None, shipped: Path | None = SHIPPED_SKILLS
) -> tuple[SkillRoot, ...]:
    """The places skills are looked for, in precedence order. `home` defaults to
    `Path.home()` (so HOME decides); `shipped` is looptui's own skills (None: leave out)."""
    roots = [SkillRoot(repository / rel, "project", rel) for rel in PROJECT_ROOTS]
    if home is None:
        try:
            home = Path.home()
        except RuntimeError:  # no HOME and no password entry: there are no user skills
            home = None
    if home is not None:
        roots += [SkillRoot(home / rel, "user", f"~/{rel}") for rel in USER_ROOTS]
    if shipped is not None:
        roots.append(SkillRoot(shipped, "looptui", "looptui's own skills"))
    return tuple(roots)


def discover_skills(
    repository: Path, home: Path | None = None, shipped: Path | None = SHIPPED_SKILLS
) -> Catalogue:
    """Every skill for the repository at `repository`, its warnings and its problems."""
    return discover_in(skill_roots(repository, home, shipped), repository)


def discover_in(roots: Iterable[SkillRoot], repository: Path) -> Catalogue:
    """The catalogue of `roots`, taken in the order given (the first of a name wins)."""
    roots = tuple(roots)
    scan = _Scan(repository.resolve())
    chosen: dict[str, Skill] = {}
    seen: set[Path] = set()  # directories found twice (the same folder by two roots)
    warnings: list[str] = []
    problems: list[SkillProblem] = []
    for root in roots:
        for directory in scan.skill_directories(root):
            real = directory.resolve()
            if real in seen:
                continue
            seen.add(real)
            found = parse_skill(directory / SKILL_FILE, root.source, _shown(root, directory))
            if isinstance(found, list):
                problems.extend(found)
                continue
            kept = chosen.get(found.name)
            if kept is None:
                chosen[found.name] = found
            else:
                warnings.append(
                    f"skill {found.name!r}: {kept.shown} ({kept.source}) shadows "
                    f"{found.shown} ({found.source}), which is not used"
                )
    warnings.extend(scan.warnings)
    return Catalogue(tuple(chosen.values()), tuple(warnings), tuple(problems), roots)


class _Scan:
    """Walks roots breadth first, sharing one directory budget over all of them."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self.looked = 0
        self.warnings: list[str] = []
        self._visited: set[Path] = set()

    def skill_directories(self, root: SkillRoot) -> Iterator[Path]:
        """The directories under `root` that hold a SKILL.md, in sorted order."""
        if not root.path.is_dir():
            return
        queue: deque[tuple[Path, int]] = deque([(root.path, 0)])
        while queue:
            directory, depth = queue.popleft()
            if self.looked >= MAX_DIRECTORIES:
                self.warnings.append(
                    f"{root.shown}: stopped looking after {MAX_DIRECTORIES} directories; "
                    "skills further in were not found"
                )
                return
            self.looked += 1
            for child in self._children(directory, root):
                if (child / SKILL_FILE).is_file():
                    yield child  # a skill's own folders are its resources, not more skills
                elif depth + 1 < MAX_DEPTH:
                    queue.append((child, depth + 1))

    def _children(self, directory: Path, root: SkillRoot) -> list[Path]:
        try:
            names = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
        except OSError:
            return []
        children: list[Path] = []
        for name in names:
            if name in SKIPPED_DIRECTORIES or name.startswith("."):
                continue
            child = directory / name
            try:
                real = child.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if real in self._visited:  # a symlink back up the tree
                continue
            if root.source == "project" and not _inside(real, self.repository):
                self.warnings.append(
                    f"{_shown(root, child)}: a symlink out of the repository; not followed"
                )
                continue
            self._visited.add(real)
            children.append(child)
        return children


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _shown(root: SkillRoot, directory: Path) -> str:
    """How messages write the SKILL.md of `directory`, found under `root`."""
    relative = (directory / SKILL_FILE).relative_to(root.path).as_posix()
    if root.source == "looptui":
        return f"{root.path}/{relative}"
    return f"{root.shown}/{relative}"
