"""Commands for a repository as a whole: open the app, write a config, the demo."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from looptui.cli.common import (
    one_line_errors,
    run_async,
    with_engine,
)
from looptui.cli.group import main
from looptui.engine import load_config
from looptui.engine.config import CONFIG_NAME, write_starter_config
from looptui.engine.workspace import Repository


@one_line_errors
def open_app(start: Path, loops: Sequence[str] = ()) -> None:
    """Open the app on the repository containing `start`, first starting `loops`."""
    from looptui.tui import run_app

    repository = Repository(start)
    repository.require_commits()
    config_path = repository.root / CONFIG_NAME
    config = load_config(config_path) if config_path.exists() else None
    run_async(run_app(repository.root, os.environ, config, loops))


@main.command()
@one_line_errors
def init() -> None:
    """Write a starter looptui.toml at the repository root (never overwrites)."""
    repository = Repository(Path.cwd())
    path = repository.root / CONFIG_NAME
    write_starter_config(path)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--headless", is_flag=True, help="Print the runs' progress instead of the app.")
@click.option(
    "--speed",
    type=float,
    default=None,
    help="How fast the replay agents work (default 0.1, to watch them for about a minute; "
    "1: all done in about six seconds).",
)
@one_line_errors
def demo(directory: Path | None, headless: bool, speed: float | None) -> None:
    """Create a demo repository in DIRECTORY (default: a new temporary one), start its loops
    and open the app on it.

    Offline and without any API key: the agents are replays, the checks are real.
    """
    from looptui.demo import WATCHABLE_SPEED, create_demo_repository, reopen_hint, run_demo

    path = create_demo_repository(directory, WATCHABLE_SPEED if speed is None else speed)
    click.echo(f"demo repository: {path}")
    os.chdir(path)
    if headless:
        run_async(with_engine(run_demo, with_config=True))
        click.echo(f"\nexplore it: {reopen_hint(path)}")
        return
    config = load_config(path / CONFIG_NAME)
    open_app(path, sorted(config.loops))
    click.echo(f"the demo repository stays in {path}; open it again with: {reopen_hint(path)}")
