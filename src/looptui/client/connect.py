"""How the TUI and the CLI get their `Supervisor`: the repository's service (started in the
background when none runs), or, with `settings.service = false` or `--no-service`, the engine
in this very process.

Connecting says hello: a service of another protocol or looptui version is refused with one
line, and replaced by a fresh one of this version when no run is active in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import msgspec

from looptui import __version__
from looptui.client.api import Supervisor
from looptui.client.remote import Connection, RemoteSupervisor
from looptui.engine.config import Config
from looptui.engine.supervisor import Engine
from looptui.protocol import PROTOCOL_VERSION
from looptui.protocol.commands import (
    MAX_FRAME,
    Hello,
    Request,
    Response,
    ServiceInfo,
    decode_service_frame,
    encode,
)
from looptui.service.daemon import START_TIMEOUT, Place, start_detached, stop_service
from looptui.service.endpoint import ServiceError, check_socket
from looptui.words import counted

HELLO_TIMEOUT = 10.0


class VersionMismatch(ServiceError):
    """The service speaks another version than this client."""

    def __init__(self, info: ServiceInfo) -> None:
        self.info = info
        busy = (
            f"; it is driving {counted(len(info.active_runs), 'run')}: let them finish, then run "
            "`looptui service restart`"
            if info.active_runs
            else "; run `looptui service restart` to replace it"
        )
        super().__init__(
            f"the looptui service (pid {info.pid}) runs looptui {info.version} "
            f"(protocol {info.protocol}), this is looptui {__version__} "
            f"(protocol {PROTOCOL_VERSION}){busy}"
        )


def use_service(config: Config | None, no_service: bool, environ: Mapping[str, str]) -> bool:
    """Whether runs belong to the service: not with --no-service, `settings.service =
    false`, or LOOPTUI_NO_SERVICE=1."""
    if no_service or environ.get("LOOPTUI_NO_SERVICE") == "1":
        return False
    return config is None or config.service


async def open_supervisor(
    root: Path,
    environ: Mapping[str, str],
    config: Config | None,
    *,
    service: bool = True,
    client: str = "cli",
    start: bool = True,
) -> Supervisor:
    """The supervisor of the repository at `root` (see the module's doc). `start=False`
    raises ServiceError when no service runs instead of starting one."""
    if not service:
        return await Engine.open(root, environ, config)
    place = await asyncio.to_thread(Place.of, root, environ)

    async def connector() -> Connection:
        return await _connect(place, environ, client, start)

    try:
        return await RemoteSupervisor.connect(connector, config, place.repository.root.name)
    except VersionMismatch as mismatch:
        if mismatch.info.active_runs or not start:
            raise
        # an idle service of another version: replace it with one of this version, and say so
        await asyncio.to_thread(stop_service, root, environ)
        fresh = await RemoteSupervisor.connect(connector, config, place.repository.root.name)
        old = mismatch.info
        fresh.notices.append(
            f"the looptui service (pid {old.pid}) ran looptui {old.version} and drove no run: "
            f"replaced by one of looptui {__version__}"
            + (f" (pid {fresh.service.pid})" if fresh.service is not None else "")
        )
        return fresh


async def _connect(
    place: Place, environ: Mapping[str, str], client: str, start: bool
) -> Connection:
    """Connect to the service, starting it first when none holds the lock."""
    # the lock, the socket's path and its owner in one trip to a thread: each trip waits its
    # turn for the GIL, which any busy thread of the caller holds most of the time
    pid, path = await asyncio.to_thread(_look, place)
    if pid is None:
        if not start:
            raise ServiceError(
                f"no looptui service runs for {place.repository.root}; start one with "
                "`looptui service start`"
            )
        await asyncio.to_thread(start_detached, place.repository.root, environ)
        pid, path = await asyncio.to_thread(_look, place)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        error = "no service holds its lock" if pid is None else ""
        if pid is not None:
            try:
                reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_FRAME)
                break
            except OSError as exc:
                error = exc.strerror or str(exc)
        # a service that holds the lock but does not listen yet is starting: wait for it
        if pid is None or loop.time() > deadline:
            raise ServiceError(f"cannot connect to the looptui service at {path}: {error}")
        await asyncio.sleep(0.05)
        pid, path = await asyncio.to_thread(_look, place)
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            writer.write(encode(Request(0, Hello(PROTOCOL_VERSION, __version__, client))))
            await writer.drain()
            line = await reader.readline()
    except BaseException:
        writer.close()
        raise
    info = _welcome(line)
    if info.protocol != PROTOCOL_VERSION or info.version != __version__:
        writer.close()
        raise VersionMismatch(info)
    return reader, writer, info


def _look(place: Place) -> tuple[int | None, Path]:
    """The pid of the service holding the lock (None when none does) and its socket; when
    one does, a socket someone else owns is refused (ServiceError)."""
    pid = place.running()
    path = place.socket_path()
    if pid is not None:
        check_socket(path)
    return pid, path


def _welcome(line: bytes) -> ServiceInfo:
    if not line:
        raise ServiceError("the looptui service closed the connection (was it refused?)")
    try:
        frame = decode_service_frame(line)
        if not isinstance(frame, Response) or frame.failure is not None:
            raise ServiceError(f"the looptui service refused this client: {frame}")
        return msgspec.json.decode(frame.result, type=ServiceInfo)
    except msgspec.DecodeError:
        # a service of another protocol may answer in a shape this client cannot read
        try:
            old = msgspec.json.decode(line)
            version = old.get("result", {}).get("version", "unknown")
        except (msgspec.DecodeError, AttributeError):
            version = "unknown"
        info = ServiceInfo(
            protocol=-1, version=str(version), pid=0, started_at=0.0, socket="", repository=""
        )
        raise VersionMismatch(info) from None


__all__ = ["VersionMismatch", "open_supervisor", "use_service"]
