"""The `looptui.toml` file itself: read once with tomllib, or written as a starter."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import tomli_w

from looptui.engine.config.model import Config
from looptui.engine.config.parsing import parse_config
from looptui.engine.errors import ConfigError
from looptui.engine.user_files import NotARegularFile, read_regular_file

CONFIG_NAME = "looptui.toml"

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def load_config(path: Path) -> Config:
    """Read and check `path`; raise ConfigError with a one-line message on any problem."""
    try:
        text = read_regular_file(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; create one with `looptui init`") from None
    except NotARegularFile as exc:
        raise ConfigError(f"{path}: not a regular file ({exc}); refusing to read it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError carries the position only in its message.
        line = getattr(exc, "lineno", None) or _line_of(str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    nul = _key_with_nul(data)
    if nul is not None:  # no argv, path or environment can carry one: refuse it here
        raise ConfigError(f"{path}: {nul}: contains a NUL character (\\u0000)")
    return parse_config(path, data)


def _key_with_nul(value: object, key: str = "") -> str | None:
    """The key path of the first key or string in `value` holding a NUL character."""
    if isinstance(value, str):
        return key if "\0" in value else None
    items: list[tuple[str, object]] = []
    if isinstance(value, dict):
        for name, item in value.items():
            where = f"{key}.{name}" if key else name
            if "\0" in name:
                return where
            items.append((where, item))
    elif isinstance(value, list):
        items = [(f"{key}[{index}]", item) for index, item in enumerate(value)]
    for where, item in items:
        found = _key_with_nul(item, where)
        if found is not None:
            return found
    return None


def _line_of(message: str) -> int | None:
    match = _TOML_POSITION.search(message)
    return int(match.group(1)) if match else None


def write_starter_config(path: Path) -> None:
    """Write a starter file to edit; refuse to overwrite an existing one."""
    starter = {
        "settings": {"max_parallel": 4},
        "agents": {
            "shell": {"kind": "command", "command": ["echo", "{prompt}"]},
        },
        "loops": {
            "fix": {
                "prompt": "Make the test suite pass.",
                "agent": "shell",
                "checks": [{"name": "tests", "run": "python -m pytest -q", "timeout": 600}],
                "max_iterations": 5,
                "iteration_timeout": "30m",
                "run_timeout": "2h",
                "stall_after": 3,
            }
        },
    }
    try:
        with path.open("xb") as handle:
            tomli_w.dump(starter, handle)
    except FileExistsError:
        raise ConfigError(f"{path}: already exists; not overwriting it") from None
