"""The `looptui` command group and its global options."""

from __future__ import annotations

import os
from pathlib import Path

import click

from looptui import __version__
from looptui.engine.agents.prompt_files import sweep_stale_prompt_files


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="looptui")
@click.option(
    "--no-service",
    is_flag=True,
    help="Drive runs in this process instead of the repository's service (for CI and scripts).",
)
@click.pass_context
def main(context: click.Context, no_service: bool) -> None:
    """Supervise loops of AI coding agents, each run in its own git worktree.

    Without a command, opens the app on the repository you are in. Runs belong to the
    repository's service (`looptui serve`, started in the background when needed), so they
    go on when the app or the command that started them ends.
    """
    if no_service:  # read by every command that opens a supervisor
        os.environ["LOOPTUI_NO_SERVICE"] = "1"
    # A prompt file that a looptui killed with SIGKILL left behind goes now at the latest.
    sweep_stale_prompt_files()
    if context.invoked_subcommand is None:
        from looptui.cli.workspace import open_app

        open_app(Path.cwd())
