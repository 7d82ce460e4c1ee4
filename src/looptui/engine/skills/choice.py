"""The skills a loop chooses (`skills = [...]` and `evaluator_skills = [...]` in its table),
found or refused.

`check_skills` runs where work starts, beside `check_triggers`: the commands that start runs,
`looptui service start`, and the service when it loads or reloads the config. A skill that
is not found (or is invalid) is one ConfigError naming the loop, the skill and the places
searched, and nothing starts.
"""

from __future__ import annotations

import itertools
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


def loop_skills(catalogue: Catalogue, loop: LoopConfig, evaluator: bool = False) -> LoopSkills:
    """The skills `loop` chose for its agent (or, with `evaluator`, for its evaluator:
    `evaluator_skills`, none when it has no evaluator), looked up in `catalogue`."""
    found: list[Skill] = []
    missing: list[str] = []
    names = loop.skills if not evaluator else loop.evaluator_skills if loop.evaluator else ()
    for name in names:
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
    if config is None or not any(
        loop.skills or (loop.evaluator and loop.evaluator_skills) for loop in config.loops.values()
    ):
        return None
    catalogue = discover_skills(repository, home, shipped)
    for loop, evaluator in itertools.product(config.loops.values(), (False, True)):
        chosen = loop_skills(catalogue, loop, evaluator)
        if not chosen.missing:
            continue
        name = chosen.missing[0]
        field = "evaluator_skills" if evaluator else "skills"
        key = f"{config.path}: loops.{loop.name}.{field}"
        invalid = catalogue.problems_of(name)
        if invalid:
            raise ConfigError(f"{key}: skill {name!r} is invalid: {invalid[0]}")
        raise ConfigError(f"{key}: no skill {name!r} found (searched {catalogue.searched()})")
    return catalogue
