"""The frontmatter of a SKILL.md: the YAML block between `---` fences, read leniently.

Skills are written for other clients whose parsers accept more than YAML does, so, as the
Agent Skills client guide asks, a byte-order mark and CRLF line ends are fine, and a plain
value with an unquoted `: ` in it (`description: Use when: ...`) is read as the string it
was meant to be.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FENCE = re.compile(r"^(?:---|\.\.\.)[ \t]*$")
# a top-level `key: value` whose plain value YAML would misread (a `: ` or ` #` inside it)
_PLAIN_VALUE = re.compile(r"^([A-Za-z0-9_-]+):[ \t]+([^'\"|>\[{&*!%@`\s].*)$")


class FrontmatterError(ValueError):
    """SKILL.md has no frontmatter, or its YAML cannot be read."""


def split_frontmatter(text: str) -> tuple[str, str]:
    """(the YAML between the `---` fences, the Markdown after them); FrontmatterError when
    the file does not open with a fenced block."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise FrontmatterError("SKILL.md must open with a '---' line and YAML frontmatter")
    for index in range(1, len(lines)):
        if _FENCE.match(lines[index]):
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise FrontmatterError("the frontmatter's closing '---' line is missing")


def load_frontmatter(yaml_text: str) -> dict[str, Any]:
    """The frontmatter as a mapping; FrontmatterError naming the line YAML stumbled on."""
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        try:  # what other clients accept: plain values with a colon in them
            data = yaml.safe_load(_quote_plain_values(yaml_text))
        except yaml.YAMLError:
            raise FrontmatterError(f"invalid YAML: {_yaml_error(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontmatterError(f"expected a mapping of keys to values, got {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def _quote_plain_values(yaml_text: str) -> str:
    lines = []
    for line in yaml_text.split("\n"):
        match = _PLAIN_VALUE.match(line)
        if match and (": " in match[2] or " #" in match[2]):
            escaped = match[2].rstrip().replace("\\", "\\\\").replace('"', '\\"')
            line = f'{match[1]}: "{escaped}"'
        lines.append(line)
    return "\n".join(lines)


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).split("\n")[0]
    # the frontmatter starts on the file's second line, after the opening '---'
    return f"{what} (line {mark.line + 2} of SKILL.md)" if mark is not None else str(what)
