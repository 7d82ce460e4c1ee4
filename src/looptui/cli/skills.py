"""`looptui skills`: the skills found for this repository, and what a loop's agents receive.

It only reads: nothing is started, and an invalid or shadowed skill is reported, not fatal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from looptui.cli.common import one_line_errors
from looptui.cli.group import main
from looptui.engine import load_config
from looptui.engine.config import CONFIG_NAME, Config
from looptui.engine.skills import (
    Catalogue,
    Listing,
    LoopSkills,
    Skill,
    discover_skills,
    loop_skills,
)
from looptui.engine.workspace import Repository
from looptui.words import counted

DESCRIPTION_WIDTH = 96  # characters of a description in the listing, on its one line


@main.command()
@click.option("--loop", "loop_name", metavar="LOOP", help="Show what LOOP's agents receive.")
@click.option("--json", "as_json", is_flag=True, help="Print the skills as JSON.")
@one_line_errors
def skills(loop_name: str | None, as_json: bool) -> None:
    """List the skills found (the project's skills/, .claude/skills/ and .agents/skills/,
    ~/.claude/skills and ~/.agents/skills, and looptui's own), with the shadowed and the
    invalid ones; with --loop, the skills LOOP chose and, for each of its agents, which
    descriptions its listing budget would cut."""
    root = Repository(Path.cwd()).root
    path = root / CONFIG_NAME
    config = load_config(path) if loop_name is not None or path.exists() else None
    # an unknown loop is a ConfigError naming the loops there are, before anything is scanned
    loop = config.loop(loop_name) if config is not None and loop_name is not None else None
    catalogue = discover_skills(root)
    chosen = loop_skills(catalogue, loop) if loop is not None else None
    if as_json:
        click.echo(json.dumps(_as_data(catalogue, config, chosen), indent=2))
        return
    if chosen is not None and config is not None and loop is not None:
        _print_loop(catalogue, config, chosen)
        judged = loop_skills(catalogue, loop, evaluator=True)
        if loop.evaluator is not None:
            _print_loop(catalogue, config, judged, "its evaluator")
    else:
        _print_catalogue(catalogue)
    for warning in catalogue.warnings:
        click.echo(f"warning: {warning}")
    for problem in catalogue.problems:
        click.echo(f"invalid, skipped: {problem}")
    if chosen is not None and loop is not None:
        missing = [*chosen.missing, *loop_skills(catalogue, loop, evaluator=True).missing]
        if missing:  # a run of the loop would be refused: say so by the exit code too
            raise SystemExit(2)


def _print_catalogue(catalogue: Catalogue) -> None:
    if not catalogue.skills:
        click.echo(f"no skills found (searched {catalogue.searched()})")
        return
    for skill in catalogue.skills:
        click.echo(f"{skill.name}  {skill.source}  {skill.shown}")
        click.echo(f"    {one_line(skill.description)}")


def _print_loop(catalogue: Catalogue, config: Config, chosen: LoopSkills, whose: str = "") -> None:
    title = f"loop {chosen.loop}" + (f", {whose}" if whose else "")
    if not chosen.skills and not chosen.missing:
        click.echo(f"{title} chooses no skills")
        return
    total = len(chosen.skills) + len(chosen.missing)
    click.echo(f"{title}: {len(chosen.skills)} of {counted(total, 'skill')} found")
    for skill in chosen.skills:
        click.echo(f"  {skill.name}  {skill.source}  {skill.shown}")
        click.echo(f"      {one_line(skill.description)}")
    for name in chosen.missing:
        problems = catalogue.problems_of(name)
        if problems:
            click.echo(f"  {name}  INVALID: {problems[0]}")
        else:
            click.echo(f"  {name}  NOT FOUND (searched {catalogue.searched()})")
    roles = _agents(config, chosen.loop)
    for role, agent, kind in roles[1:] if whose else roles[:1]:
        listing = chosen.listing(kind)
        click.echo(f"{role} {agent} ({kind}): {_listing_line(listing)}")
        for line in _own_skills_lines(kind, chosen):
            click.echo(f"    {line}")


# where the CLIs find the user's skills by themselves (agent-formats.md §3.2, field-notes §4)
USER_SKILLS = {"claude-code": "~/.claude/skills", "codex": "~/.agents/skills, ~/.codex/skills"}
_USER_SKILL_DIRS = {
    "claude-code": (".claude/skills",),
    "codex": (".agents/skills", ".codex/skills"),
}


def _own_skills_lines(kind: str, chosen: LoopSkills) -> list[str]:
    """What a CLI agent loads from the user's own folders by itself: each skill there of
    the same name as one the loop chose (Claude Code ranks personal skills above project
    ones, so it uses that one), and how many others it sees."""
    folders = [Path.home() / folder for folder in _USER_SKILL_DIRS.get(kind, ())]
    own = {
        entry.name
        for folder in folders
        if folder.is_dir()
        for entry in folder.iterdir()
        if (entry / "SKILL.md").is_file()
    }
    if not own:
        return []
    lines = []
    verb = "will use" if kind == "claude-code" else "may use"
    for skill in chosen.skills:
        if skill.name in own:
            lines.append(
                f"{kind} {verb} your own {skill.name} ({USER_SKILLS[kind]}), not the loop's: "
                + (
                    "personal skills rank above the project's"
                    if kind == "claude-code"
                    else "it loads both"
                )
            )
    others = len(set(own) - {skill.name for skill in chosen.skills})
    if others:
        plural = "skill" if others == 1 else "skills"
        lines.append(
            f"{kind} also loads {others} of your own {plural} itself ({USER_SKILLS[kind]})"
        )
    return lines


def _listing_line(listing: Listing) -> str:
    if listing.budget is None:
        return "no listing budget for this kind; every description fits"
    total = len(listing.shown) + len(listing.cut)
    line = (
        f"listing budget {listing.budget:,} characters: {len(listing.shown)} of {total} "
        f"descriptions fit ({listing.used:,} used)"
    )
    if listing.cut:
        line += f"; would be cut: {', '.join(listing.cut)}"
    return line


def _agents(config: Config, loop_name: str) -> list[tuple[str, str, str]]:
    """(role, agent name, agent kind) of each agent a run of the loop has."""
    loop = config.loop(loop_name)
    agents = [("executor", loop.agent, config.agents[loop.agent].kind)]
    if loop.evaluator is not None:
        agents.append(("evaluator", loop.evaluator, config.agents[loop.evaluator].kind))
    return agents


def one_line(text: str, width: int = DESCRIPTION_WIDTH) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _skill_data(skill: Skill) -> dict[str, Any]:
    return {
        "name": skill.name,
        "source": skill.source,
        "path": str(skill.skill_md),
        "shown": skill.shown,
        "description": skill.description,
        "license": skill.license,
        "compatibility": skill.compatibility,
        "metadata": dict(skill.metadata),
        "allowed_tools": list(skill.allowed_tools),
        "files": list(skill.files()),
    }


def _as_data(
    catalogue: Catalogue, config: Config | None, chosen: LoopSkills | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "searched": [
            {"path": str(root.path), "source": root.source, "shown": root.shown}
            for root in catalogue.roots
        ],
        "skills": [_skill_data(skill) for skill in catalogue.skills],
        "warnings": list(catalogue.warnings),
        "problems": [
            {
                "path": str(problem.path),
                "shown": problem.shown,
                "field": problem.field,
                "message": problem.message,
            }
            for problem in catalogue.problems
        ],
    }
    if chosen is not None and config is not None:
        agents = []
        loop = config.loop(chosen.loop)
        for role, agent, kind in _agents(config, chosen.loop):
            skills = loop_skills(catalogue, loop, evaluator=True) if role != "executor" else chosen
            listing = skills.listing(kind)
            agents.append(
                {
                    "role": role,
                    "agent": agent,
                    "kind": kind,
                    "skills": [skill.name for skill in skills.skills],
                    "missing": list(skills.missing),
                    "budget": listing.budget,
                    "used": listing.used,
                    "shown": [skill.name for skill in listing.shown],
                    "cut": list(listing.cut),
                    "also_loads": USER_SKILLS.get(kind),
                }
            )
        data["loop"] = {
            "name": chosen.loop,
            "skills": [skill.name for skill in chosen.skills],
            "missing": list(chosen.missing),
            "agents": agents,
        }
    return data
