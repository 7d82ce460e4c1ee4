"""Skills in the open Agent Skills format: `SKILL.md` folders found, checked and chosen.

`discover_skills(repository)` looks in the project's `skills/`, `.claude/skills/` and
`.agents/skills/`, the user's `~/.claude/skills` and `~/.agents/skills`, and the skills
looptui ships, and returns a `Catalogue`: the `Skill`s that count, warnings (a skill
shadowed by another of its name) and problems (invalid skills, skipped). A loop chooses
skills by name (`skills = [...]`): `loop_skills` looks them up, `check_skills` refuses a
loop whose skill is missing, and `fit_listing` with `listing_budget(kind)` says which
descriptions an agent kind would be shown and which cut.

A `Skill` keeps its name and description; `body()`, `files()` and `read_file()` read the
rest from disk when asked, confined to the skill's directory.

`delivery` says what each agent kind receives (a prompt listing and the skill tools for the
API agents; the skills placed in the worktree for Claude Code and Codex, by `placement`).
"""

from looptui.engine.skills.budget import (
    API_BUDGET,
    CLAUDE_CODE_BUDGET,
    CODEX_BUDGET,
    LISTING_BUDGETS,
    Listing,
    fit_listing,
    listing_budget,
    listing_entry,
)
from looptui.engine.skills.choice import LoopSkills, check_skills, loop_skills
from looptui.engine.skills.discovery import (
    MAX_DEPTH,
    MAX_DIRECTORIES,
    SHIPPED_SKILLS,
    Catalogue,
    SkillRoot,
    discover_in,
    discover_skills,
    skill_roots,
)
from looptui.engine.skills.frontmatter import FrontmatterError, split_frontmatter
from looptui.engine.skills.model import SKILL_FILE, Skill, SkillProblem, SkillSource
from looptui.engine.skills.validation import name_problems, parse_skill

__all__ = [
    "API_BUDGET",
    "CLAUDE_CODE_BUDGET",
    "CODEX_BUDGET",
    "LISTING_BUDGETS",
    "MAX_DEPTH",
    "MAX_DIRECTORIES",
    "SHIPPED_SKILLS",
    "SKILL_FILE",
    "Catalogue",
    "FrontmatterError",
    "Listing",
    "LoopSkills",
    "Skill",
    "SkillProblem",
    "SkillRoot",
    "SkillSource",
    "check_skills",
    "discover_in",
    "discover_skills",
    "fit_listing",
    "listing_budget",
    "listing_entry",
    "loop_skills",
    "name_problems",
    "parse_skill",
    "skill_roots",
    "split_frontmatter",
]
