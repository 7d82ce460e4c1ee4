"""A loop's prompt gets what fired it: `{changed_paths}`, `{commit}`, `{previous_run}`,
`{previous_verdict}` and `{fired_by}`, filled from the firing's payload.

Only these names are placeholders. Any other `{word}` is a config error when the config
loads (a typo would otherwise reach the agent unfilled, unattended); `{{` and `}}` write a
brace. A run started by hand fills them with what is true then: nothing changed, nothing
fired it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDERS = ("changed_paths", "commit", "previous_run", "previous_verdict", "fired_by")
MAX_PATHS = 200  # changed paths listed in a prompt; the rest are counted

_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z][a-z0-9_]*)\}")


def unknown_placeholders(prompt: str) -> list[str]:
    """The `{word}` names in `prompt` that are not placeholders, in order, once each."""
    names: list[str] = []
    for match in _TOKEN.finditer(prompt):
        name = match.group(1)
        if name is not None and name not in PLACEHOLDERS and name not in names:
            names.append(name)
    return names


def render(prompt: str, payload: Mapping[str, Any] | None) -> str:
    """`prompt` with its placeholders filled from a firing's payload (None: by hand)."""
    values = _values(payload or {})

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        return values.get(name, token)

    return _TOKEN.sub(replace, prompt)


def _values(payload: Mapping[str, Any]) -> dict[str, str]:
    paths = [str(path) for path in payload.get("changed_paths") or ()]
    listed = "\n".join(f"- {path}" for path in paths[:MAX_PATHS])
    if len(paths) > MAX_PATHS:
        listed += f"\n- ... and {len(paths) - MAX_PATHS} more"
    commit = payload.get("commit") or {}
    commit_text = (
        f"{commit.get('sha', '')[:12]} {commit.get('subject', '')}".strip()
        if isinstance(commit, Mapping)
        else str(commit)
    )
    previous = payload.get("previous_run") or {}
    previous_text = (
        f"{previous.get('id', '')} ({previous.get('loop', '')}, {previous.get('status', '')})"
        if isinstance(previous, Mapping) and previous
        else ""
    )
    return {
        "changed_paths": listed or "(no files changed)",
        "commit": commit_text or "(no commit)",
        "previous_run": previous_text or "(no previous run)",
        "previous_verdict": str(payload.get("previous_verdict") or "(no verdict)"),
        "fired_by": str(payload.get("fired_by") or "started by hand"),
    }
