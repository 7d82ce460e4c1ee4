"""The user's remembered choices (the theme), in a small TOML file of their config folder."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tomli_w


def config_home(environ: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/looptui`, or `~/.config/looptui`."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "looptui"


@dataclass
class Settings:
    """Choices made in the app that should outlive it. A broken file is ignored, not fatal."""

    path: Path
    theme: str | None = None

    @classmethod
    def load(cls, path: Path) -> Settings:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return cls(path)
        theme = data.get("theme")
        return cls(path, theme if isinstance(theme, str) else None)

    def save(self) -> None:
        """Write atomically: a crash mid-write leaves the old file, never half a new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"theme": self.theme} if self.theme else {}
        partial = self.path.with_suffix(".tmp")
        partial.write_text(tomli_w.dumps(data), encoding="utf-8")
        os.replace(partial, self.path)
