"""What each agent kind is given of a loop's skills, and how.

The API agents (`anthropic`, `openai`) have looptui's own skill tools: their prompt carries a
"## Skills" section listing names and descriptions within their budget (`listing_text`), and
`load_skill` / `read_skill_file` give the rest on demand. Claude Code and Codex discover
skills themselves: the skills are placed, for the turn, where each CLI looks inside its
working directory (`CLI_SKILL_ROOTS`, see `placement`); the CLI lists them within its own
budget. Other kinds (command, replay) are given nothing.

When descriptions do not fit a kind's budget, `Delivery.cut_warning` says which, by name, so
that the run's log says so (field-notes.md §4: no silent drops).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from looptui.engine.config.model import LoopConfig
from looptui.engine.skills.budget import Listing, listing_entry
from looptui.engine.skills.choice import LoopSkills, loop_skills
from looptui.engine.skills.discovery import discover_skills
from looptui.engine.skills.model import Skill

# The kinds that are given looptui's skill tools, and so a listing in looptui's prompt
SKILL_TOOL_KINDS = frozenset({"anthropic", "openai"})
# Where each CLI discovers project skills in its working directory: Claude Code's
# `.claude/skills/` (agent-formats.md §3.2); Codex 0.169 reads the repository's
# `.agents/skills/` (tried against the real CLI: its instructions then list the skill).
CLI_SKILL_ROOTS: dict[str, str] = {"claude-code": ".claude/skills", "codex": ".agents/skills"}


@dataclass(frozen=True)
class Delivery:
    """The skills one agent is given: the skills (for its tools, or to be placed), the
    prompt's listing (for the API kinds; empty for the others), and why, if any, some
    descriptions are cut from what it is shown."""

    skills: tuple[Skill, ...] = ()
    listing: str = ""
    cut_warning: str | None = None


NO_SKILLS = Delivery()


def listing_text(listing: Listing) -> str:
    """The body of the prompt's "## Skills" section: how to load a skill, the descriptions
    that fit, and the names of those cut (still loadable, by name)."""
    if not listing.shown and not listing.cut:
        return ""
    lines = [
        "Skills are instructions for particular tasks. When one fits what you are doing, "
        "load it with the load_skill tool before you start, and follow it; read a file it "
        "names with read_skill_file.",
        *(listing_entry(skill) for skill in listing.shown),
    ]
    if listing.cut:
        lines.append(
            f"- (descriptions cut to fit {listing.budget} characters; load by name: "
            f"{', '.join(listing.cut)})"
        )
    return "\n".join(lines)


def delivery_for(chosen: LoopSkills, kind: str, who: str = "agent") -> Delivery:
    """What an agent of `kind` receives of `chosen`; `who` names it in the warning ("agent
    'coder'", "evaluator 'judge'")."""
    if not chosen.skills or (kind not in SKILL_TOOL_KINDS and kind not in CLI_SKILL_ROOTS):
        return NO_SKILLS
    listing = chosen.listing(kind)
    warning = None
    if listing.cut:
        warning = (
            f"skills: the {kind} listing budget of {listing.budget} characters cuts the "
            f"description{'s' if len(listing.cut) > 1 else ''} of {', '.join(listing.cut)} "
            f"for {who} (loop {chosen.loop}: {len(listing.shown)} of {len(chosen.skills)} "
            "shown; the others are listed by name only)"
        )
    text = listing_text(listing) if kind in SKILL_TOOL_KINDS else ""
    return Delivery(chosen.skills, text, warning)


@dataclass(frozen=True)
class RunSkills:
    """What one run's agents receive: its agent's and its evaluator's deliveries, and the
    warnings its log is to carry (descriptions cut, skills no longer found)."""

    agent: Delivery = NO_SKILLS
    evaluator: Delivery = NO_SKILLS
    warnings: tuple[str, ...] = ()


def run_skills(
    repository: Path, loop: LoopConfig, agent_kind: str, evaluator_kind: str | None
) -> RunSkills:
    """Discover the skills `loop` chooses (nothing is scanned when it chooses none) and work
    out what its agent of `agent_kind` and its evaluator (None: it has none) receive."""
    wanted = loop.skills or (loop.evaluator is not None and loop.evaluator_skills)
    if not wanted:
        return RunSkills()
    catalogue = discover_skills(repository)
    warnings: list[str] = []
    deliveries = []
    for evaluator, kind in ((False, agent_kind), (True, evaluator_kind)):
        chosen = loop_skills(catalogue, loop, evaluator)
        who = f"the evaluator {loop.evaluator!r}" if evaluator else f"the agent {loop.agent!r}"
        if chosen.missing:  # found when the run was started, gone since
            warnings.append(
                f"skills: not found for {who} (loop {loop.name}): {', '.join(chosen.missing)}"
            )
        delivery = delivery_for(chosen, kind, who) if kind is not None else NO_SKILLS
        if delivery.cut_warning:
            warnings.append(delivery.cut_warning)
        deliveries.append(delivery)
    return RunSkills(deliveries[0], deliveries[1], tuple(warnings))
