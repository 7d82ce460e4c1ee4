"""The commands a client sends the service, and the frames that carry them over its socket.

Each command is a frozen msgspec Struct tagged by `op`; its reply is the value the same
method of the in-process engine returns, encoded by msgspec (runs, verdicts, plans are plain
dataclasses). A frame is one line of JSON: the client sends `Request`s, the service answers
each with a `Response` of the same id and pushes `Pushed` event batches for subscriptions.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from looptui.engine.models import KeptDecision, ReviewTally, RunStatus
from looptui.protocol.events import Event, EventKind, Lines

DiffScope = Literal["run", "last"]  # the whole run's diff, or its last iteration's


class Command(msgspec.Struct, frozen=True, tag_field="op"):
    """Something a client asks of the service."""


class Hello(Command, frozen=True, tag="hello"):
    """The first command of a connection: who is asking, speaking which protocol."""

    protocol: int
    version: str  # looptui's version
    client: str = ""


class ServiceInfo(msgspec.Struct, frozen=True):
    """The service's answer to Hello, and what `looptui service status` shows."""

    protocol: int
    version: str
    pid: int
    started_at: float
    socket: str
    repository: str
    active_runs: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # the service's own recent errors, newest last


class GetStatus(Command, frozen=True, tag="status"):
    pass


class Shutdown(Command, frozen=True, tag="shutdown"):
    """Stop the service; its runs are recorded as interrupted and resume with the next."""


class StartRun(Command, frozen=True, tag="start"):
    loop: str
    prompt: str | None = None
    agent: str | None = None


class StopRun(Command, frozen=True, tag="stop"):
    run: str


class ResumeRun(Command, frozen=True, tag="resume"):
    run: str


class GiveFeedback(Command, frozen=True, tag="feedback"):
    run: str
    text: str


class WaitRun(Command, frozen=True, tag="wait"):
    run: str


class Merge(Command, frozen=True, tag="merge"):
    """`reject` None: the run's kept review decisions say what is left out."""

    run: str
    squash: bool = False
    reject: str | None = None
    force: bool = False
    review: ReviewTally | None = None  # how much of the run the reviewer covered


class PreviewMerge(Command, frozen=True, tag="preview"):
    run: str
    reject: str | None = None


class Discard(Command, frozen=True, tag="discard"):
    run: str
    force: bool = False


class GetDiff(Command, frozen=True, tag="diff"):
    run: str
    color: bool = False


class GetReviewDiff(Command, frozen=True, tag="review_diff"):
    """The run's diff as text for `parse_patch`: of the whole run or its last iteration."""

    run: str
    scope: DiffScope = "run"


class GetReviewDecisions(Command, frozen=True, tag="review_decisions"):
    """The review decisions kept for the run; the reply is `list[KeptDecision]`."""

    run: str


class SaveReviewDecisions(Command, frozen=True, tag="save_review_decisions"):
    """Keep these decisions on the run's whole diff (`Selection.to_data`), replacing any."""

    run: str
    decisions: tuple[KeptDecision, ...] = ()


class Subscribe(Command, frozen=True, tag="subscribe"):
    """Events of one run (or all) after the cursor `after` (None: live ones only), as
    `Pushed` frames under `subscription`, a number the client chose (so that it is ready
    for the first batch, which may come before the reply). The reply is the cursor the
    subscription starts from (for None, the newest event stored when the service got it).
    `lines="newest"`: only each run's newest output line of each batch."""

    subscription: int
    run: str | None = None
    after: int | None = None
    lines: Lines = "all"


class Unsubscribe(Command, frozen=True, tag="unsubscribe"):
    subscription: int


class ActiveRuns(Command, frozen=True, tag="active"):
    pass


# -- history (the read-only queries of `History`) -----------------------------------------


class ListRuns(Command, frozen=True, tag="runs"):
    statuses: tuple[RunStatus, ...] | None = None


class GetRun(Command, frozen=True, tag="run"):
    run: str


class FindRun(Command, frozen=True, tag="find_run"):
    prefix: str


class ListEvents(Command, frozen=True, tag="events"):
    run: str
    after: int = 0
    limit: int | None = None
    kinds: tuple[EventKind, ...] | None = None


class EventsSince(Command, frozen=True, tag="events_since"):
    after: int
    run: str | None = None
    limit: int = 10_000


class LastEventId(Command, frozen=True, tag="last_event_id"):
    pass


class EventsPage(Command, frozen=True, tag="events_page"):
    run: str
    after: int
    count: int


class Search(Command, frozen=True, tag="search"):
    """The best `limit` events and notes matching `query`; the reply is `list[SearchHit]`."""

    query: str
    loop: str | None = None
    run: str | None = None
    limit: int = 50


class LatestLines(Command, frozen=True, tag="latest_lines"):
    kinds: tuple[EventKind, ...]


class ListIterations(Command, frozen=True, tag="iterations"):
    run: str


class ListCheckResults(Command, frozen=True, tag="check_results"):
    run: str


class ListVerdicts(Command, frozen=True, tag="verdicts"):
    run: str


class LatestVerdicts(Command, frozen=True, tag="latest_verdicts"):
    pass


class ListNotes(Command, frozen=True, tag="notes"):
    run: str


# -- memory (notes with their provenance; the service owns the store they live in) ---------


class ListMemory(Command, frozen=True, tag="memory"):
    """The notes of a loop or of a run (an id or its unique prefix), newest first, each with
    its sources; neither: every note."""

    loop: str | None = None
    run: str | None = None


class GetNote(Command, frozen=True, tag="note"):
    note: int


class AcceptNote(Command, frozen=True, tag="accept_note"):
    """Let a note (a proposed lesson, say) reach the later runs of its loop."""

    note: int


class EditNote(Command, frozen=True, tag="edit_note"):
    """The human's new text for a note (its sources then say the human wrote it)."""

    note: int
    text: str


class DeleteNote(Command, frozen=True, tag="delete_note"):
    """Delete a note; the reply is the note as it was."""

    note: int


# -- loops and their triggers ---------------------------------------------------------------


class ListLoops(Command, frozen=True, tag="loops"):
    """Every loop with its triggers, next fire times and last firings."""


class FireLoop(Command, frozen=True, tag="fire"):
    loop: str


class PauseTriggers(Command, frozen=True, tag="pause"):
    """Pause (or, `paused=False`, resume) a loop's trigger, or all of its triggers."""

    loop: str
    trigger: str | None = None
    paused: bool = True


class ListFirings(Command, frozen=True, tag="firings"):
    loop: str | None = None
    limit: int = 50


AnyCommand = (
    Hello
    | GetStatus
    | Shutdown
    | StartRun
    | StopRun
    | ResumeRun
    | GiveFeedback
    | WaitRun
    | Merge
    | PreviewMerge
    | Discard
    | GetDiff
    | GetReviewDiff
    | GetReviewDecisions
    | SaveReviewDecisions
    | Subscribe
    | Unsubscribe
    | ActiveRuns
    | ListRuns
    | GetRun
    | FindRun
    | ListEvents
    | EventsSince
    | LastEventId
    | EventsPage
    | Search
    | LatestLines
    | ListIterations
    | ListCheckResults
    | ListVerdicts
    | LatestVerdicts
    | ListNotes
    | ListMemory
    | GetNote
    | AcceptNote
    | EditNote
    | DeleteNote
    | ListLoops
    | FireLoop
    | PauseTriggers
    | ListFirings
)


# -- frames ---------------------------------------------------------------------------------


class Frame(msgspec.Struct, frozen=True, tag_field="frame"):
    pass


class Request(Frame, frozen=True, tag="request"):
    id: int
    command: AnyCommand


class Failure(msgspec.Struct, frozen=True):
    """Why a command failed: the engine's error class (so the client raises the same) and
    its one-line message."""

    error: str
    message: str


class Response(Frame, frozen=True, tag="response"):
    id: int
    result: msgspec.Raw = msgspec.Raw(b"null")  # decoded by the caller, who knows its type
    failure: Failure | None = None


class Pushed(Frame, frozen=True, tag="pushed"):
    subscription: int
    events: tuple[Event, ...] = ()
    ended: bool = False  # the subscription is over (the service is stopping)


ClientFrame = Request
ServiceFrame = Response | Pushed

MAX_FRAME = 256 * 1024 * 1024  # a line: big diffs and histories fit, a runaway does not

_encoder = msgspec.json.Encoder(enc_hook=str)
_service_frames = msgspec.json.Decoder(ServiceFrame)
_client_frames = msgspec.json.Decoder(ClientFrame)


def encode(frame: Frame) -> bytes:
    """A frame as one line of JSON."""
    return _encoder.encode(frame) + b"\n"


def encode_value(value: object) -> msgspec.Raw:
    """A command's result as JSON, to be decoded by a caller that knows its type."""
    return msgspec.Raw(_encoder.encode(value))


def decode_request(line: bytes) -> Request:
    return _client_frames.decode(line)


def decode_service_frame(line: bytes) -> Response | Pushed:
    return _service_frames.decode(line)
