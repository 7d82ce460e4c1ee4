"""The Textual app. It talks to runs only through a `Supervisor`: the repository's service,
or the engine in this process when the service is off."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from looptui.client.connect import open_supervisor, use_service
from looptui.engine import Config


async def run_app(
    root: Path,
    environ: Mapping[str, str],
    config: Config | None,
    start: Iterable[str] = (),
) -> None:
    """Connect to the service of the repository at `root` (or open its engine here, when the
    service is off), start the loops named in `start`, and run the app until the user quits.
    Runs the service drives go on after that; runs of an engine in this process stop, their
    work kept."""
    from looptui.tui.app import LooptuiApp
    from looptui.tui.settings import Settings, config_home
    from looptui.tui.themes import SHIPPED_THEMES

    home = config_home(environ)
    engine = await open_supervisor(
        root, environ, config, service=use_service(config, False, environ), client="tui"
    )
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
