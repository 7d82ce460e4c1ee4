"""The listing budget: how many characters of skill descriptions an agent is shown up front.

Each agent kind lists skills within its own budget and, past it, hides descriptions without
a word (shared/reference/field-notes.md §4: "Silent drops"). looptui works out which would
be cut, so that the CLI and the run can say so instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from looptui.engine.skills.model import Skill

# Claude Code: context window x 4 characters per token x `skillListingBudgetFraction` (1% by
# default), field-notes.md §4; for the 200k-token context of its models, 8,000 characters.
CLAUDE_CODE_BUDGET = 200_000 * 4 // 100
# Codex: a fixed 5,440 characters (field-notes.md §4, openai/codex #24299).
CODEX_BUDGET = 5_440
# The API agents list skills in looptui's own prompt: our choice, the same as Claude Code's,
# about 2,000 tokens, small beside the task and the notes.
API_BUDGET = 8_000
LISTING_BUDGETS: dict[str, int] = {
    "claude-code": CLAUDE_CODE_BUDGET,
    "codex": CODEX_BUDGET,
    "anthropic": API_BUDGET,
    "openai": API_BUDGET,
}


def listing_budget(kind: str) -> int | None:
    """The listing budget of an agent kind, in characters; None for kinds that are shown no
    listing (a command or a replay agent takes no skills up front)."""
    return LISTING_BUDGETS.get(kind)


def listing_entry(skill: Skill) -> str:
    """The line a skill takes in a listing, whose length counts against the budget."""
    return f"- {skill.name}: {skill.description}"


@dataclass(frozen=True)
class Listing:
    """Which skills' descriptions fit a budget (`shown`, in the order given) and which would
    be cut (`cut`, by name: they are listed by name alone), with the characters used."""

    budget: int | None
    shown: tuple[Skill, ...]
    cut: tuple[str, ...]
    used: int

    @property
    def fits(self) -> bool:
        """Whether every description fits."""
        return not self.cut


def fit_listing(skills: Iterable[Skill], budget: int | None) -> Listing:
    """Fit the descriptions of `skills`, in their order, into `budget` characters.

    Each entry costs its line and a newline. One that no longer fits is cut (its name may
    still be listed, as Claude Code does, and is not counted); a shorter one after it may
    still fit, so the order given is the order of priority. A budget of None fits all.
    """
    skills = tuple(skills)
    if budget is None:
        return Listing(None, skills, (), sum(len(listing_entry(s)) + 1 for s in skills))
    shown: list[Skill] = []
    cut: list[str] = []
    used = 0
    for skill in skills:
        full = len(listing_entry(skill)) + 1
        if used + full <= budget:
            shown.append(skill)
            used += full
            continue
        cut.append(skill.name)
    return Listing(budget, tuple(shown), tuple(cut), used)
