"""The service's socket server: one connection per client, typed commands in, replies and
pushed event batches out.

Each connection is checked first (its peer must be this user) and must begin with `Hello`.
Commands run concurrently (a `WaitRun` does not hold up the rest); replies are written in
the order they are ready, each naming its request. An error the engine raises for the user
goes back as a `Failure` with its one line; anything else is logged as the service's own
error, recorded, and answered as an internal error, never a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import msgspec

from looptui import __version__
from looptui.engine.errors import LooptuiError
from looptui.engine.supervisor import Engine
from looptui.protocol import PROTOCOL_VERSION
from looptui.protocol.commands import (
    MAX_FRAME,
    AcceptNote,
    ActiveRuns,
    AnyCommand,
    DeleteNote,
    Discard,
    EditNote,
    EventsPage,
    EventsSince,
    Failure,
    FindRun,
    FireLoop,
    GetDiff,
    GetNote,
    GetReviewDecisions,
    GetReviewDiff,
    GetRun,
    GetStatus,
    GiveFeedback,
    Hello,
    LastEventId,
    LatestLines,
    LatestVerdicts,
    ListCheckResults,
    ListEvents,
    ListFirings,
    ListIterations,
    ListLoops,
    ListMemory,
    ListNotes,
    ListRuns,
    ListVerdicts,
    Merge,
    PauseTriggers,
    PreviewMerge,
    Pushed,
    Request,
    Response,
    ResumeRun,
    SaveReviewDecisions,
    Search,
    ServiceInfo,
    Shutdown,
    StartRun,
    StopRun,
    Subscribe,
    Unsubscribe,
    WaitRun,
    decode_request,
    encode,
    encode_value,
)
from looptui.protocol.events import Lines
from looptui.service.endpoint import peer_allowed

logger = logging.getLogger(__name__)

MAX_ERRORS = 20  # the service's own errors that `looptui service status` shows


class Server:
    """Serves one engine to any number of clients."""

    def __init__(
        self,
        engine: Engine,
        socket_path: str,
        on_shutdown: Callable[[], None],
        reload_config: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.socket_path = socket_path
        self.started_at = time.time()
        self.request_shutdown = on_shutdown
        self.reload_config = reload_config
        self._connections: set[asyncio.Task[None]] = set()

    async def info(self) -> ServiceInfo:
        errors = await self.engine.store.service_errors(MAX_ERRORS)
        return ServiceInfo(
            protocol=PROTOCOL_VERSION,
            version=__version__,
            pid=os.getpid(),
            started_at=self.started_at,
            socket=self.socket_path,
            repository=str(self.engine.repository.root),
            active_runs=tuple(self.engine.active_run_ids()),
            errors=tuple(
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} (pid {pid}) {message}"
                for at, pid, message in errors
            ),
        )

    async def record_error(self, message: str) -> None:
        """Keep one of the service's own errors in the store, for `looptui service status`
        now and after this service is gone (the log has the traceback)."""
        try:
            await self.engine.store.add_service_error(message)
        except LooptuiError:  # the store itself is failing: the log keeps it
            logger.error("could not record the service error: %s", message)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client's connection, until it closes it or the service stops."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection = _Connection(self, reader, writer)
        try:
            sock = writer.get_extra_info("socket")
            if sock is None or not peer_allowed(sock):
                logger.warning("refused a connection from another user")
                return
            await connection.serve()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            await connection.close()

    async def close(self) -> None:
        """End every connection (their subscriptions say they ended)."""
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


class _Connection:
    def __init__(
        self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.engine = server.engine
        self.reader = reader
        self.writer = writer
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._feeds: dict[int, asyncio.Task[None]] = {}
        self._greeted = False

    async def serve(self) -> None:
        while line := await self.reader.readline():
            try:
                request = decode_request(line)
            except msgspec.DecodeError as exc:
                await self._send(Response(0, failure=Failure("ProtocolError", str(exc))))
                continue
            if not self._greeted and not isinstance(request.command, Hello):
                await self._fail(request, "ProtocolError", "the first command must be hello")
                continue
            task = asyncio.create_task(self._answer(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in [*self._tasks, *self._feeds.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._feeds.values(), return_exceptions=True)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def _send(self, frame: Response | Pushed) -> None:
        async with self._write_lock:
            self.writer.write(encode(frame))
            await self.writer.drain()

    async def _fail(self, request: Request, error: str, message: str) -> None:
        await self._send(Response(request.id, failure=Failure(error, message)))

    async def _answer(self, request: Request) -> None:
        try:
            result = await self._dispatch(request.command)
        except LooptuiError as exc:
            await self._fail(request, type(exc).__name__, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            what = type(request.command).__name__
            logger.exception("the service failed on %s", what)
            await self.server.record_error(f"{what}: {exc!r}")
            await self._fail(request, "ServiceFailure", f"the service failed on {what}: {exc!r}")
        else:
            await self._send(Response(request.id, encode_value(result)))

    async def _dispatch(self, command: AnyCommand) -> Any:
        engine, history = self.engine, self.engine.history
        match command:
            case Hello():
                self._greeted = True
                return await self.server.info()
            case GetStatus():
                return await self.server.info()
            case Shutdown():
                self.server.request_shutdown()
                return None
            case StartRun(loop=loop, prompt=prompt, agent=agent):
                self.server.reload_config()
                return await engine.start_run(loop, prompt, agent)
            case StopRun(run=run):
                return await engine.stop(run)
            case ResumeRun(run=run):
                self.server.reload_config()
                return await engine.resume(run)
            case GiveFeedback(run=run, text=text):
                self.server.reload_config()
                return await engine.feedback(run, text)
            case WaitRun(run=run):
                return await engine.wait(run)
            case Merge(run=run, squash=squash, reject=reject, force=force, review=review):
                self.server.reload_config()  # `[review] require_decisions` as it is now
                return await engine.merge(run, squash, reject, force, review)
            case PreviewMerge(run=run, reject=reject):
                self.server.reload_config()
                return await engine.preview(run, reject)
            case Discard(run=run, force=force):
                await engine.discard(run, force)
                return None
            case GetDiff(run=run, color=color):
                return await engine.diff(run, color)
            case GetReviewDiff(run=run, scope=scope):
                return await engine.review_diff(run, scope)
            case GetReviewDecisions(run=run):
                return await engine.review_decisions(run)
            case SaveReviewDecisions(run=run, decisions=decisions):
                await engine.save_review_decisions(run, decisions)
                return None
            case Subscribe(subscription=number, run=run, after=after, lines=lines):
                if after is None:  # live from now: the cursor is the newest event stored
                    after = await history.last_event_id()
                self._subscribe(number, run, after, lines)
                return after
            case Unsubscribe(subscription=number):
                feed = self._feeds.pop(number, None)
                if feed is not None:
                    feed.cancel()
                return None
            case ActiveRuns():
                return engine.active_run_ids()
            case ListRuns(statuses=statuses):
                return await history.runs(statuses)
            case GetRun(run=run):
                return await history.run(run)
            case FindRun(prefix=prefix):
                return await history.find_run(prefix)
            case ListEvents(run=run, after=after, limit=limit, kinds=kinds):
                return await history.events(run, after, limit, kinds)
            case EventsSince(after=after, run=run, limit=limit):
                return await history.events_since(after, run, limit)
            case LastEventId():
                return await history.last_event_id()
            case EventsPage(run=run, after=after, count=count):
                return await history.events_page(run, after, count)
            case Search(query=query, loop=loop, run=run, limit=limit):
                return await history.search(query, loop=loop, run=run, limit=limit)
            case LatestLines(kinds=kinds):
                return await history.latest_lines(kinds)
            case ListIterations(run=run):
                return await history.iterations(run)
            case ListCheckResults(run=run):
                return await history.check_results(run)
            case ListVerdicts(run=run):
                return await history.verdicts(run)
            case LatestVerdicts():
                return await history.latest_verdicts()
            case ListNotes(run=run):
                return await history.notes(run)
            case ListMemory(loop=loop, run=run):
                self.server.reload_config()  # a loop just written has (no) memory
                return await engine.memory(loop, run)
            case GetNote(note=note):
                return await engine.note(note)
            case AcceptNote(note=note):
                return await engine.accept_note(note)
            case EditNote(note=note, text=text):
                return await engine.edit_note(note, text)
            case DeleteNote(note=note):
                return await engine.delete_note(note)
            case ListLoops():
                self.server.reload_config()
                return await engine.loops()
            case FireLoop(loop=loop):
                self.server.reload_config()
                return await engine.fire(loop)
            case PauseTriggers(loop=loop, trigger=trigger, paused=paused):
                self.server.reload_config()
                if paused:
                    return await engine.pause(loop, trigger)
                return await engine.unpause(loop, trigger)
            case ListFirings(loop=loop, limit=limit):
                return await engine.firing_history(loop, limit)
        raise LooptuiError(f"unknown command {type(command).__name__}")

    def _subscribe(self, number: int, run_id: str | None, after: int | None, lines: Lines) -> None:
        if number in self._feeds:
            raise LooptuiError(f"subscription {number} is already open")
        feed = self.engine.subscribe(run_id, after, lines)

        async def forward() -> None:
            try:
                while (batch := await feed.next_batch()) is not None:
                    await self._send(Pushed(number, tuple(batch)))
                await self._send(Pushed(number, ended=True))
            finally:
                feed.close()

        self._feeds[number] = asyncio.create_task(forward(), name=f"feed-{number}")


__all__ = ["MAX_FRAME", "Server"]
