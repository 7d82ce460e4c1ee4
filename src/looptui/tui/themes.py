"""looptui's themes: Textual's built-ins plus TOML files that add looptui's semantic colours.

A theme file (see `themes/`) looks like this:

    name = "looptui-dusk"
    dark = true

    [colors]              # Textual's base colours: primary, secondary, accent, background,
    primary = "#7aa2f7"   # surface, panel, foreground, success, warning, error

    [variables]           # looptui's own, each optional (built-in themes get defaults)
    verdict-pass = "#9ece6a"

Built-in themes know nothing of looptui's variables, so each gets a default derived from the
theme's own success/error/warning/accent colours.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from looptui.engine.errors import ConfigError

SEMANTIC_VARIABLES = {
    # variable: how a theme that does not define it derives it from its generated colours
    "verdict-pass": "{success}",
    "verdict-fail": "{error}",
    "verdict-unknown": "{warning}",
    "needs-review": "{accent}",
    "run-active": "{primary}",
    "diff-add": "{success} 18%",
    "diff-remove": "{error} 18%",
    "diff-add-text": "{success}",
    "diff-remove-text": "{error}",
    # the diff's syntax highlighting
    "syntax-keyword": "{text-secondary}",
    "syntax-name": "{text-primary}",
    "syntax-string": "{text-success}",
    "syntax-number": "{text-warning}",
    "syntax-comment": "{foreground} 55%",
    "syntax-operator": "{text-accent}",
}
COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "background",
    "surface",
    "panel",
    "foreground",
    "success",
    "warning",
    "error",
)
SHIPPED_THEMES = Path(__file__).resolve().parent.parent / "themes"


def semantic_defaults(generated: dict[str, str]) -> dict[str, str]:
    """looptui's variables for a theme that lacks them, from its generated colour system."""
    return {name: rule.format(**generated) for name, rule in SEMANTIC_VARIABLES.items()}


def load_theme(path: Path) -> Theme:
    """Read one theme file; a broken one raises ConfigError naming the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read theme: {exc}") from exc
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: name: expected the theme's name as a string")
    colors = data.get("colors", {})
    variables = data.get("variables", {})
    if not isinstance(colors, dict) or not isinstance(variables, dict):
        raise ConfigError(f"{path}: [colors] and [variables] must be tables")
    unknown = set(colors) - set(COLOR_FIELDS)
    if unknown:
        raise ConfigError(
            f"{path}: colors.{sorted(unknown)[0]}: expected one of {', '.join(COLOR_FIELDS)}"
        )
    if "primary" not in colors:
        raise ConfigError(f"{path}: colors.primary: expected a colour")
    for key, value in {**colors, **variables}.items():
        if not isinstance(value, str) or not _is_colour(value):
            raise ConfigError(f'{path}: {key}: expected a colour, such as "#7aa2f7"')
    try:
        return Theme(
            name=name,
            dark=bool(data.get("dark", True)),
            variables={str(k): str(v) for k, v in variables.items()},
            primary=colors["primary"],
            secondary=colors.get("secondary"),
            accent=colors.get("accent"),
            background=colors.get("background"),
            surface=colors.get("surface"),
            panel=colors.get("panel"),
            foreground=colors.get("foreground"),
            success=colors.get("success"),
            warning=colors.get("warning"),
            error=colors.get("error"),
        )
    except Exception as exc:  # Textual validates colours as it builds the theme
        raise ConfigError(f"{path}: {exc}") from exc


def _is_colour(value: str) -> bool:
    """A colour, optionally followed by an alpha percentage ("#9ece6a 16%")."""
    colour, _, alpha = value.strip().partition(" ")
    try:
        Color.parse(colour)
    except ColorParseError:
        return False
    return not alpha or (alpha.endswith("%") and alpha[:-1].isdigit())


def load_themes(directories: Iterable[Path]) -> tuple[list[Theme], list[str]]:
    """Every `*.toml` theme of the given directories, in name order, and a one-line error for
    each file that could not be loaded (the others load all the same)."""
    themes, errors = [], []
    for directory in directories:
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                try:
                    themes.append(load_theme(path))
                except ConfigError as exc:
                    errors.append(str(exc))
    return themes, errors
