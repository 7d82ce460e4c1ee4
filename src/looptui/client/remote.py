"""The client of a repository's service: `Supervisor` over its Unix socket.

Every call is one typed command and its reply, decoded into the type the engine returns.
Subscriptions remember the last event they delivered; when the connection drops (the service
restarted, crashed and was replaced), the client connects again by itself and each feed
subscribes again from its cursor, so its reader sees no gap and no duplicate. Errors the
engine raised in the service are raised here as the same class, with the same line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Literal, TypeVar

import msgspec

from looptui.client.remote_memory import RemoteMemory
from looptui.client.remote_review import RemoteReview
from looptui.engine import errors
from looptui.engine.config import Config
from looptui.engine.landing import MergeGate, merge_gate
from looptui.engine.models import (
    CheckResult,
    Iteration,
    Note,
    Run,
    RunStatus,
    Verdict,
)
from looptui.engine.store.database import StoreError
from looptui.engine.store.feed import Batches
from looptui.engine.store.ledger import Firing
from looptui.engine.store.memory import NoteNotFound
from looptui.engine.store.search import SearchHit
from looptui.engine.triggers.overview import LoopState
from looptui.protocol.commands import (
    ActiveRuns,
    AnyCommand,
    EventsPage,
    EventsSince,
    FindRun,
    FireLoop,
    GetRun,
    GetStatus,
    GiveFeedback,
    LastEventId,
    LatestLines,
    LatestVerdicts,
    ListCheckResults,
    ListEvents,
    ListFirings,
    ListIterations,
    ListLoops,
    ListNotes,
    ListRuns,
    ListVerdicts,
    PauseTriggers,
    Pushed,
    Request,
    Response,
    ResumeRun,
    Search,
    ServiceInfo,
    Shutdown,
    StartRun,
    StopRun,
    Subscribe,
    Unsubscribe,
    WaitRun,
    decode_service_frame,
    encode,
)
from looptui.protocol.events import Event, EventKind, Lines
from looptui.service.endpoint import ServiceError

logger = logging.getLogger(__name__)

T = TypeVar("T")
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, ServiceInfo]
Connector = Callable[[], Awaitable[Connection]]
State = Literal["connected", "reconnecting", "closed"]

RECONNECT_FOR = 30.0  # seconds of trying before a call gives up
_ERRORS: dict[str, type[errors.LooptuiError]] = {
    cls.__name__: cls
    for cls in (
        errors.LooptuiError,
        errors.ConfigError,
        errors.WorkspaceError,
        errors.MergeRefused,
        errors.HookRefused,
        errors.AgentUnavailable,
        errors.RunNotFound,
        errors.SearchError,
        NoteNotFound,
        StoreError,
        ServiceError,
    )
}


class _Lost(Exception):
    """The connection ended under a call (it is tried again on the next connection)."""


class RemoteSupervisor(RemoteMemory, RemoteReview):
    """`Supervisor` for a client of the service (see the module's doc)."""

    def __init__(self, connector: Connector, config: Config | None, name: str) -> None:
        self.config = config
        self._name = name
        self._connector = connector
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._feeds: dict[int, RemoteFeed] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._info: ServiceInfo | None = None
        self.state: State = "reconnecting"
        self.notices: list[str] = []  # what connecting did that the user should hear of
        self.on_state: Callable[[State], None] = lambda state: None  # the TUI shows it
        self.history = RemoteHistory(self)

    @classmethod
    async def connect(
        cls, connector: Connector, config: Config | None, name: str
    ) -> RemoteSupervisor:
        client = cls(connector, config, name)
        await client._connect_once()
        return client

    @property
    def name(self) -> str:
        return self._name

    @property
    def service(self) -> ServiceInfo | None:
        return self._info

    # -- the connection ----------------------------------------------------------------------

    async def _connect_once(self) -> None:
        reader, writer, info = await self._connector()
        self._writer, self._info = writer, info
        self._reader_task = asyncio.create_task(self._read(reader), name="looptui-client")
        self._set_state("connected")
        for feed in list(self._feeds.values()):  # each subscribes again from its cursor
            await feed.resubscribe()

    def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)

    async def _ensure_connected(self) -> None:
        if self.state == "closed":
            raise ServiceError("the connection to the looptui service is closed")
        if self._writer is not None and self.state == "connected":
            return
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._reconnect())
        await asyncio.shield(self._connecting)

    async def _reconnect(self) -> None:
        self._set_state("reconnecting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECONNECT_FOR
        delay = 0.05
        while True:
            try:
                await self._connect_once()
                return
            except (OSError, errors.LooptuiError) as exc:
                if loop.time() + delay > deadline:
                    raise ServiceError(f"cannot reach the looptui service: {exc}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                frame = decode_service_frame(line)
                if isinstance(frame, Response):
                    future = self._pending.pop(frame.id, None)
                    if future is not None and not future.done():
                        future.set_result(frame)
                else:
                    feed = self._feeds.get(frame.subscription)
                    if feed is not None:
                        feed.receive(frame)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            logger.warning("the connection to the service broke: %s", exc)
        finally:
            self._writer = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(_Lost())
            self._pending.clear()
            if self.state != "closed":
                self._set_state("reconnecting")
                for feed in self._feeds.values():
                    feed.connection_lost()

    async def call(self, command: AnyCommand, result: type[T]) -> T:
        """Send `command` and return its reply as `result`, connecting again first if the
        connection was lost. A command cut off by a lost connection is not sent again
        (it may have taken effect): ServiceError says so."""
        await self._ensure_connected()
        writer = self._writer
        assert writer is not None
        number = next(self._ids)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            writer.write(encode(Request(number, command)))
            await writer.drain()
            response = await future
        except (_Lost, ConnectionError) as exc:
            self._pending.pop(number, None)
            raise ServiceError(
                f"the looptui service went away during {type(command).__name__}; "
                "see `looptui service status`"
            ) from exc
        if response.failure is not None:
            kind = _ERRORS.get(response.failure.error, errors.LooptuiError)
            raise kind(response.failure.message)
        return msgspec.json.decode(response.result, type=result)

    async def close(self) -> None:
        """Disconnect; the service and its runs go on."""
        self._set_state("closed")
        for feed in list(self._feeds.values()):
            feed.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)

    # -- the engine's calls ------------------------------------------------------------------

    async def status(self) -> ServiceInfo:
        return await self.call(GetStatus(), ServiceInfo)

    async def shutdown(self) -> None:
        await self.call(Shutdown(), type(None))

    async def start_run(
        self, loop_name: str, prompt: str | None = None, agent: str | None = None
    ) -> Run:
        return await self.call(StartRun(loop_name, prompt, agent), Run)

    async def stop(self, prefix: str) -> Run:
        return await self.call(StopRun(prefix), Run)

    async def loops(self) -> list[LoopState]:
        return await self.call(ListLoops(), list[LoopState])

    async def fire(self, loop_name: str) -> Firing:
        return await self.call(FireLoop(loop_name), Firing)

    async def pause(self, loop_name: str, trigger: str | None = None) -> list[str]:
        return await self.call(PauseTriggers(loop_name, trigger, True), list[str])

    async def unpause(self, loop_name: str, trigger: str | None = None) -> list[str]:
        return await self.call(PauseTriggers(loop_name, trigger, False), list[str])

    async def firing_history(self, loop_name: str | None = None, limit: int = 50) -> list[Firing]:
        return await self.call(ListFirings(loop_name, limit), list[Firing])

    async def resume(self, prefix: str) -> Run:
        return await self.call(ResumeRun(prefix), Run)

    async def feedback(self, prefix: str, text: str) -> Run:
        return await self.call(GiveFeedback(prefix, text), Run)

    async def wait(self, run_id: str) -> Run:
        """Wait for the run to end; across a restart of the service too."""
        while True:
            try:
                run = await self.call(WaitRun(run_id), Run)
            except ServiceError:  # it went away: its successor resumes the run, or says why
                await self._ensure_connected()
                continue
            if not run.status.is_active:
                return run
            # the service that drove it went away and its successor resumes it: wait on
            async for _ in self._until_status_change(run_id):
                break

    async def _until_status_change(self, run_id: str) -> AsyncIterator[None]:
        feed = self.subscribe(run_id, await self.history.last_event_id())
        try:
            while (batch := await feed.next_batch()) is not None:
                if any(event.kind is EventKind.STATUS for event in batch):
                    yield None
                    return
        finally:
            feed.close()

    async def active_runs(self) -> list[str]:
        return await self.call(ActiveRuns(), list[str])

    async def merge_gate(self, run: Run) -> MergeGate:
        return merge_gate(run, await self.history.verdicts(run.id))

    def subscribe(
        self, run_id: str | None = None, after: int | None = None, lines: Lines = "all"
    ) -> RemoteFeed:
        return RemoteFeed(self, run_id, after, lines)

    # -- feeds -------------------------------------------------------------------------------

    def _next_feed_number(self) -> int:
        return next(self._ids)

    def _register(self, feed: RemoteFeed) -> None:
        self._feeds[feed.number] = feed

    def _unregister(self, feed: RemoteFeed) -> None:
        if self._feeds.pop(feed.number, None) is not None and self._writer is not None:
            with contextlib.suppress(Exception):
                request = Request(next(self._ids), Unsubscribe(feed.number))
                self._writer.write(encode(request))


class RemoteFeed(Batches):
    """A `Feed` from the service. It remembers the id of the last event it delivered and,
    after a lost connection, subscribes again from there."""

    def __init__(
        self, client: RemoteSupervisor, run_id: str | None, after: int | None, lines: Lines
    ) -> None:
        self._client = client
        self.run_id = run_id
        self.cursor = after
        self.lines: Lines = lines
        self.number = 0
        self._queue: asyncio.Queue[Pushed | BaseException] = asyncio.Queue()
        self._started = False
        self._closed = False
        self._waiting = 0  # events in the queue
        self.error: BaseException | None = None
        # subscribed at once, as the engine's own feed is: a live-only feed read later still
        # has the events written in between (without a running loop: on the first read)
        self._starting: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):
            self._starting = asyncio.get_running_loop().create_task(self._start())
            self._starting.add_done_callback(_retrieve)

    async def _start(self) -> None:
        self._started = True
        await self.resubscribe()

    async def resubscribe(self) -> None:
        """Subscribe (again) from the cursor, under a new number."""
        if self._closed or not self._started:
            return
        self._client._unregister(self)
        self.number = self._client._next_feed_number()
        self._client._register(self)
        subscribe = Subscribe(self.number, self.run_id, self.cursor, self.lines)
        start = await self._client.call(subscribe, int)
        if self.cursor is None:  # live from now on: with a cursor, a reconnection is gapless
            self.cursor = start

    def receive(self, frame: Pushed) -> None:
        self._waiting += len(frame.events)
        self._queue.put_nowait(frame)

    def connection_lost(self) -> None:
        self._queue.put_nowait(_Lost())

    async def next_batch(self) -> list[Event] | None:
        if self._closed:
            return None
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await self._starting
        while True:
            item = await self._queue.get()
            if isinstance(item, _Closed):
                return None
            if isinstance(item, _Lost):
                await self._client._ensure_connected()  # which subscribes this feed again
                continue
            if isinstance(item, BaseException):
                raise item
            self._waiting -= len(item.events)
            if item.subscription != self.number:
                continue  # a batch of the subscription before a reconnection
            if item.ended:
                await self._client._ensure_connected()
                continue
            events = [event for event in item.events if (event.id or 0) > (self.cursor or 0)]
            if events:
                self.cursor = events[-1].id
                return events

    @property
    def backlog(self) -> int:
        """Events received but not taken yet."""
        return self._waiting

    def close(self) -> None:
        if not self._closed:
            self._closed = True  # a start under way sees it and does not subscribe
            self._client._unregister(self)
            self._queue.put_nowait(_Closed())


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a feed's failed start as seen: its reader gets the error on its next read."""
    if not task.cancelled():
        task.exception()


class _Closed(Exception):
    pass


class RemoteHistory:
    """`History` over the socket."""

    def __init__(self, client: RemoteSupervisor) -> None:
        self._call = client.call

    async def runs(self, statuses: Iterable[RunStatus] | None = None) -> list[Run]:
        wanted = tuple(statuses) if statuses is not None else None
        return await self._call(ListRuns(wanted), list[Run])

    async def run(self, run_id: str) -> Run:
        return await self._call(GetRun(run_id), Run)

    async def find_run(self, prefix: str) -> Run:
        return await self._call(FindRun(prefix), Run)

    async def events(
        self,
        run_id: str,
        after_id: int = 0,
        limit: int | None = None,
        kinds: Iterable[EventKind] | None = None,
    ) -> list[Event]:
        wanted = tuple(kinds) if kinds is not None else None
        return await self._call(ListEvents(run_id, after_id, limit, wanted), list[Event])

    async def events_since(
        self, after_id: int, run_id: str | None = None, limit: int = 10_000
    ) -> list[Event]:
        return await self._call(EventsSince(after_id, run_id, limit), list[Event])

    async def last_event_id(self) -> int:
        return await self._call(LastEventId(), int)

    async def events_page(self, run_id: str, after_id: int, count: int) -> list[Event]:
        return await self._call(EventsPage(run_id, after_id, count), list[Event])

    async def search(
        self,
        query: str,
        *,
        loop: str | None = None,
        run: str | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        return await self._call(Search(query, loop, run, limit), list[SearchHit])

    async def latest_lines(self, kinds: Iterable[EventKind]) -> dict[str, Event]:
        return await self._call(LatestLines(tuple(kinds)), dict[str, Event])

    async def iterations(self, run_id: str) -> list[Iteration]:
        return await self._call(ListIterations(run_id), list[Iteration])

    async def check_results(self, run_id: str) -> list[tuple[int, CheckResult]]:
        return await self._call(ListCheckResults(run_id), list[tuple[int, CheckResult]])

    async def verdicts(self, run_id: str) -> list[tuple[int, Verdict]]:
        return await self._call(ListVerdicts(run_id), list[tuple[int, Verdict]])

    async def latest_verdicts(self) -> dict[str, tuple[int, Verdict]]:
        return await self._call(LatestVerdicts(), dict[str, tuple[int, Verdict]])

    async def notes(self, run_id: str) -> list[Note]:
        return await self._call(ListNotes(run_id), list[Note])


__all__ = ["RemoteFeed", "RemoteHistory", "RemoteSupervisor"]
