"""`looptui serve` and `looptui service start|stop|restart|status`."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import click

from looptui.cli.common import one_line_errors, run_async
from looptui.cli.group import main
from looptui.client.connect import VersionMismatch, open_supervisor
from looptui.client.remote import RemoteSupervisor
from looptui.engine.config import CONFIG_NAME, load_config
from looptui.engine.workspace import Repository
from looptui.protocol.commands import ServiceInfo
from looptui.service.daemon import Place, serve, start_detached, stop_service
from looptui.words import counted


@main.command(name="serve")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The repository to serve (default: the one you are in).",
)
@one_line_errors
def serve_command(repo: Path | None) -> None:
    """Run this repository's supervisor service in the foreground (for systemd, tmux or a
    container). SIGTERM stops it cleanly: runs still going resume with the next service."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_async(serve(repo or Path.cwd(), os.environ))


@main.group()
def service() -> None:
    """Manage this repository's background service, which owns its runs."""


@service.command(name="start")
@one_line_errors
def service_start() -> None:
    """Start the service in the background (nothing happens if one runs)."""
    place = Place.of(Path.cwd(), os.environ)
    pid = place.running()
    if pid is not None:
        click.echo(f"the looptui service already runs (pid {pid})")
        return
    pid = start_detached(place.repository.root, os.environ)
    click.echo(f"started the looptui service (pid {pid}); its log is {place.log_path}")


@service.command(name="stop")
@one_line_errors
def service_stop() -> None:
    """Stop the service; runs still going are interrupted and resume when it starts again."""
    pid = stop_service(Path.cwd(), os.environ)
    click.echo(
        "no looptui service was running" if pid is None else f"stopped the service (pid {pid})"
    )


@service.command(name="restart")
@one_line_errors
def service_restart() -> None:
    """Stop the service and start one of this looptui's version; its runs resume."""
    root = Repository(Path.cwd()).root
    path = root / CONFIG_NAME
    if path.exists():  # a broken file would leave no service at all: say so, stop nothing
        load_config(path)
    stopped = stop_service(root, os.environ)
    pid = start_detached(root, os.environ)
    was = f" (was pid {stopped})" if stopped else ""
    click.echo(f"the looptui service runs as pid {pid}{was}")


@service.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@one_line_errors
def service_status(as_json: bool) -> None:
    """Show the service's pid, version, uptime, socket, active runs and recent errors.
    Exits 1 when no service runs."""
    info, mismatch = run_async(_status())
    if info is None:
        if as_json:
            click.echo(json.dumps({"running": False}))
        else:
            click.echo("no looptui service runs for this repository")
        raise SystemExit(1)
    uptime = time.time() - info.started_at
    if as_json:
        record = {
            "running": True,
            "pid": info.pid,
            "version": info.version,
            "protocol": info.protocol,
            "uptime": round(uptime, 1),
            "socket": info.socket,
            "repository": info.repository,
            "active_runs": list(info.active_runs),
            "errors": list(info.errors),
            "mismatch": mismatch,  # null, or why this looptui cannot use it
        }
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(
        f"looptui service pid {info.pid}, looptui {info.version}, up {_duration(uptime)}\n"
        f"  socket {info.socket}\n"
        f"  driving {counted(len(info.active_runs), 'run')}"
        + (f": {', '.join(info.active_runs)}" if info.active_runs else "")
    )
    for error in info.errors:
        click.echo(f"  error: {error}")
    if mismatch:
        click.echo(f"  {mismatch}")


async def _status() -> tuple[ServiceInfo | None, str | None]:
    """What the running service says of itself (None: none runs), and why this looptui
    cannot use it when it is of another version."""
    place = Place.of(Path.cwd(), os.environ)
    if place.running() is None:
        return None, None
    # a service runs: a socket that cannot be used (another user's, say) is an error to
    # show, not "no service"
    try:
        supervisor = await open_supervisor(Path.cwd(), os.environ, None, start=False)
    except VersionMismatch as mismatch:
        return mismatch.info, str(mismatch)
    assert isinstance(supervisor, RemoteSupervisor)
    try:
        return await supervisor.status(), None
    finally:
        await supervisor.close()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


__all__ = ["service"]
