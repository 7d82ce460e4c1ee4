"""Where the tests find the Claude Code and Codex CLIs, or why they skip.

`.ci/run` installs both with npm into `.tools/`; a developer may point `LOOPTUI_NPM_BIN` at
another `node_modules/.bin`, or have them on PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex"}


def find_cli(name: str) -> str | None:
    """The path of the `name` CLI (`claude` or `codex`), or None."""
    places = [os.environ.get("LOOPTUI_NPM_BIN"), str(ROOT / ".tools/node_modules/.bin")]
    for place in places:
        if place and (Path(place) / name).is_file():
            return str(Path(place) / name)
    return shutil.which(name)


def require_cli(name: str) -> str:
    """The CLI's path; skips the test, saying why, when it is not installed."""
    found = find_cli(name)
    if found is None:
        pytest.skip(
            f"the {name} CLI is not installed (npm install --prefix .tools {PACKAGES[name]}; "
            ".ci/run does it)"
        )
    return found
