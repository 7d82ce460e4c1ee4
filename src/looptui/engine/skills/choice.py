"""The skills a loop chooses (`skills = [...]` in its table), found or refused.

`check_skills` runs where work starts, beside `check_triggers`: the commands that start runs,
`looptui service start`, and the service when it loads or reloads the config. A skill that
is not found (or is invalid) is one ConfigError naming the loop, the skill and the places
searched, and nothing starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from looptui.engine.config.model import Config, LoopConfig
from looptui.engine.errors import ConfigError
from looptui.engine.skills.budget import Listing, fit_listing, listing_budget
from looptui.engine.skills.discovery import SHIPPED_SKILLS, Catalogue, discover_skills
from looptui.engine.skills.model import Skill


@dataclass(frozen=True)
class LoopSkills:
    """What one loop's agents receive: its chosen skills that were found, in the order the
    loop names them, and the names that were not."""

    loop: str
    skills: tuple[Skill, ...]
    missing: tuple[str, ...]

    def listing(self, agent_kind: str) -> Listing:
        """Which of the skills' descriptions an agent of `agent_kind` would be shown."""
        return fit_listing(self.skills, listing_budget(agent_kind))


def loop_skills(catalogue: Catalogue, loop: LoopConfig) -> LoopSkills:
    """The skills `loop` chose, looked up in `catalogue`."""
    found: list[Skill] = []
    missing: list[str] = []
    for name in loop.skills:
        skill = catalogue.get(name)
        if skill is None:
            missing.append(name)
        else:
            found.append(skill)
    return LoopSkills(loop.name, tuple(found), tuple(missing))


def check_skills(
    config: Config | None,
    repository: Path,
    home: Path | None = None,
    shipped: Path | None = SHIPPED_SKILLS,
) -> Catalogue | None:
    """Raise ConfigError for the first skill a loop chose that is not found; the catalogue
    (None when no loop chooses a skill: then nothing is scanned)."""
    if config is None or not any(loop.skills for loop in config.loops.values()):
        return None
    catalogue = discover_skills(repository, home, shipped)
    for loop in config.loops.values():
        chosen = loop_skills(catalogue, loop)
        if not chosen.missing:
            continue
        name = chosen.missing[0]
        key = f"{config.path}: loops.{loop.name}.skills"
        invalid = catalogue.problems_of(name)
        if invalid:
            raise ConfigError(f"{key}: skill {name!r} is invalid: {invalid[0]}")
        raise ConfigError(f"{key}: no skill {name!r} found (searched {catalogue.searched()})")
    return catalogue
