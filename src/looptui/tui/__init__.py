"""The Textual app. It talks to runs only through a `Supervisor`: the repository's service,
or the engine in this process when the service is off."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from looptui.client.connect import open_supervisor, use_service
from looptui.engine import Config

# Textual draws at most 60 frames a second unless told (TEXTUAL_FPS, read once, when
# textual.constants is first imported): while cards change, a key press waits for the next
# frame, up to 16.7 ms at 60. At 120 the wait halves, and frames stay small (the grid draws
# at most CARDS_PER_FRAME changed cards in each). The user's own TEXTUAL_FPS wins. The
# variable is set only while Textual reads it: the service, agents and checks started from
# this process get the environment as the user gave it.
FRAME_RATE = "120"
if "TEXTUAL_FPS" not in os.environ and "textual.constants" not in sys.modules:
    os.environ["TEXTUAL_FPS"] = FRAME_RATE
    try:
        import textual.constants  # noqa: F401
    finally:
        del os.environ["TEXTUAL_FPS"]


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
            root=root,
        )
        await app.run_async()
    finally:
        await engine.close()
