"""The API agents' skill tools: `load_skill` and `read_skill_file`, over the loop's skills.

Both only read, so a reviewer (the evaluator, read-only) has them too. `load_skill` answers
with the skill's body wrapped in `<skill_content name="...">` and the list of its files
(not their text: the spec's third tier is read on demand); `read_skill_file` reads one of
them, confined to the skill's directory by `Skill.read_file` (a path that leaves it is
refused). The `name` parameter is an enum of the loop's skills, as the client guide asks,
and a name outside it is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from looptui.engine.agents.tools import Tool, ToolError
from looptui.engine.skills.model import Skill
from looptui.engine.workspace.paths import PathEscape

LOAD_SKILL = "load_skill"
READ_SKILL_FILE = "read_skill_file"
SKILL_TOOL_NAMES = frozenset({LOAD_SKILL, READ_SKILL_FILE})


def skill_tools(skills: Sequence[Skill]) -> tuple[Tool, ...]:
    """The two tools, their `name` an enum of `skills` (no tools without skills)."""
    if not skills:
        return ()
    name = {
        "type": "string",
        "enum": [skill.name for skill in skills],
        "description": "the skill's name, as the Skills section of the task lists it",
    }
    return (
        Tool(
            LOAD_SKILL,
            "Load a skill: its instructions in full, and the list of its other files.",
            {"type": "object", "properties": {"name": name}, "required": ["name"]},
        ),
        Tool(
            READ_SKILL_FILE,
            "Read one file of a skill (one that load_skill listed), by its path in the skill.",
            {
                "type": "object",
                "properties": {
                    "name": name,
                    "path": {
                        "type": "string",
                        "description": "the file's path relative to the skill's folder",
                    },
                },
                "required": ["name", "path"],
            },
        ),
    )


def call_skill_tool(skills: Sequence[Skill], tool: str, arguments: Mapping[str, Any]) -> str:
    """Run `load_skill` or `read_skill_file`; ToolError says what was wrong, for the model."""
    skill = _skill(skills, arguments.get("name"))
    if tool == LOAD_SKILL:
        return load_skill(skill)
    path = arguments.get("path")
    if not isinstance(path, str) or not path:
        raise ToolError("path must be a non-empty string")
    try:
        return skill.read_file(path)
    except PathEscape as exc:
        raise ToolError(f"{path!r} is not a file of skill {skill.name}: {exc}") from None
    except FileNotFoundError:
        listed = ", ".join(skill.files()) or "none"
        raise ToolError(f"{path}: not a file of skill {skill.name} (its files: {listed})") from None


def load_skill(skill: Skill) -> str:
    """The skill's body in `<skill_content>`, then its files by relative path."""
    files = skill.files()
    listed = "\n".join(f"- {file}" for file in files) if files else "(none)"
    return (
        f'<skill_content name="{escape(skill.name)}">\n{skill.body()}</skill_content>\n'
        f"Files of this skill (read one with {READ_SKILL_FILE}):\n{listed}"
    )


def _skill(skills: Sequence[Skill], name: object) -> Skill:
    known = ", ".join(skill.name for skill in skills) or "none"
    if not isinstance(name, str) or not name:
        raise ToolError(f"give the name of a skill: one of {known}")
    for skill in skills:
        if skill.name == name:
            return skill
    raise ToolError(f"no skill {name!r}; the skills are {known}")
