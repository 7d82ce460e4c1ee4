"""The Textual app. It talks to the engine only through the `Engine` facade."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from looptui.engine import Config, Engine


async def run_app(
    root: Path,
    environ: Mapping[str, str],
    config: Config | None,
    start: Iterable[str] = (),
) -> None:
    """Open the engine of the repository at `root`, start the loops named in `start`, and run
    the app until the user quits; runs still going are then stopped, their work kept."""
    from looptui.tui.app import LooptuiApp
    from looptui.tui.settings import Settings, config_home
    from looptui.tui.themes import SHIPPED_THEMES

    home = config_home(environ)
    engine = await Engine.open(root, environ, config)
    try:
        for loop in start:
            await engine.start_run(loop)
        app = LooptuiApp(
            engine,
            Settings.load(home / "settings.toml"),
            theme_dirs=(SHIPPED_THEMES, home / "themes"),
        )
        await app.run_async()
    finally:
        await engine.close()
