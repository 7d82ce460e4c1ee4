"""One SKILL.md checked against the Agent Skills spec, and turned into a Skill.

The spec (agentskills.io, `docs/specification.mdx`; see shared/reference/agent-formats.md
§3.1): `name` 1-64 characters of `[a-z0-9-]`, no leading, trailing or double hyphen, equal
to the directory's name; `description` 1-1024 characters; optional `license`,
`compatibility` (at most 500 characters), `metadata` (string to string) and `allowed-tools`
(a space-separated string or a list).

Lenient where the client guide allows it (the frontmatter module reads the YAML so):
`name` defaults to the directory's name (as Claude Code does), numbers and flags in
`metadata` become strings, and keys the spec does not know are kept in `extras`. What the
spec forbids is refused, one problem per field, and the skill is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from looptui.engine.skills.frontmatter import FrontmatterError, load_frontmatter, split_frontmatter
from looptui.engine.skills.model import Skill, SkillProblem, SkillSource
from looptui.engine.user_files import NotARegularFile, read_regular_file

MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_COMPATIBILITY = 500
SPEC_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")

_NAME = re.compile(r"^[a-z0-9-]+$")


def parse_skill(skill_md: Path, source: SkillSource, shown: str) -> Skill | list[SkillProblem]:
    """The skill whose SKILL.md is at `skill_md`, or every problem that keeps it out."""

    def problem(field: str, message: str) -> SkillProblem:
        return SkillProblem(skill_md, shown, field, message)

    try:
        text = read_regular_file(skill_md)
    except NotARegularFile as exc:
        return [problem("file", f"not a regular file ({exc})")]
    except UnicodeDecodeError:
        return [problem("file", "not UTF-8 text")]
    except OSError as exc:
        return [problem("file", f"cannot be read: {exc.strerror or exc}")]
    try:
        data = load_frontmatter(split_frontmatter(text)[0])
    except FrontmatterError as exc:
        return [problem("frontmatter", str(exc))]
    directory = skill_md.parent
    problems: list[SkillProblem] = []
    name = data.get("name", directory.name)
    if isinstance(name, str):
        for message in name_problems(name, directory.name):
            problems.append(problem("name", message))
    else:
        problems.append(problem("name", f"expected a string, got {_shown(name)}"))
    description = data.get("description")
    if description is None or (isinstance(description, str) and not description.strip()):
        problems.append(
            problem("description", "missing: say what the skill does and when to use it")
        )
    elif not isinstance(description, str):
        problems.append(problem("description", f"expected a string, got {_shown(description)}"))
    elif len(description) > MAX_DESCRIPTION:
        problems.append(
            problem(
                "description", f"{len(description)} characters, at most {MAX_DESCRIPTION} allowed"
            )
        )
    license_ = data.get("license")
    if license_ is not None and not isinstance(license_, str):
        problems.append(problem("license", f"expected a string, got {_shown(license_)}"))
    compatibility = data.get("compatibility")
    if compatibility is not None:
        if not isinstance(compatibility, str):
            problems.append(
                problem("compatibility", f"expected a string, got {_shown(compatibility)}")
            )
        elif len(compatibility) > MAX_COMPATIBILITY:
            problems.append(
                problem(
                    "compatibility",
                    f"{len(compatibility)} characters, at most {MAX_COMPATIBILITY} allowed",
                )
            )
    metadata, metadata_problem = _metadata(data.get("metadata"))
    if metadata_problem:
        problems.append(problem("metadata", metadata_problem))
    tools, tools_problem = _allowed_tools(data.get("allowed-tools"))
    if tools_problem:
        problems.append(problem("allowed-tools", tools_problem))
    if problems:
        return problems
    assert isinstance(name, str) and isinstance(description, str)
    return Skill(
        name=name,
        description=description.strip(),
        directory=directory,
        source=source,
        skill_md=skill_md,
        shown=shown,
        license=license_ if isinstance(license_, str) else None,
        compatibility=compatibility if isinstance(compatibility, str) else None,
        metadata=metadata,
        allowed_tools=tools,
        extras={key: value for key, value in data.items() if key not in SPEC_KEYS},
    )


def name_problems(name: str, directory_name: str | None = None) -> list[str]:
    """What is wrong with `name` as a skill's name (nothing: an empty list)."""
    if not name:
        return ["must not be empty"]
    problems: list[str] = []
    if len(name) > MAX_NAME:
        problems.append(f"{_quoted(name)} is {len(name)} characters, at most {MAX_NAME} allowed")
    if not _NAME.match(name):
        problems.append(f"{_quoted(name)} must be lowercase letters, digits and hyphens")
    elif name.startswith("-") or name.endswith("-"):
        problems.append(f"{_quoted(name)} must not start or end with a hyphen")
    elif "--" in name:
        problems.append(f"{_quoted(name)} must not hold two hyphens in a row")
    if directory_name is not None and not problems and name != directory_name:
        problems.append(
            f"{_quoted(name)} must equal its directory's name {_quoted(directory_name)}"
        )
    return problems


def _metadata(value: object) -> tuple[dict[str, str], str | None]:
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return {}, f"expected a mapping of strings to strings, got {_shown(value)}"
    metadata: dict[str, str] = {}
    for key, item in value.items():
        # a version of 1.0 or a flag of true is a string the author did not quote
        if isinstance(item, dict | list) or item is None:
            return {}, f"{key}: expected a string, got {_shown(item)}"
        metadata[str(key)] = str(item).lower() if isinstance(item, bool) else str(item)
    return metadata, None


def _allowed_tools(value: object) -> tuple[tuple[str, ...], str | None]:
    if value is None:
        return (), None
    if isinstance(value, str):
        return tuple(value.split()), None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value), None
    return (), f"expected a space-separated string or a list of strings, got {_shown(value)}"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shown(value: object) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
