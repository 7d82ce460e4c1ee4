"""The events of a run, one typed payload per kind: what the engine publishes and stores.

Every payload is a frozen msgspec Struct tagged with its `EventKind`, and `Event` is the
envelope the store gives it (run, iteration, time, row id). Producers build payloads,
consumers `match` on them: mypy checks the one against the other, and no reader re-parses
a dict. The store keeps each payload as JSON without its tag (the kind has a column of its
own); `decode_payload` reads it back, older rows included.
"""

from __future__ import annotations

import enum
import json
import logging
from typing import Any, ClassVar, Literal

import msgspec

from looptui.engine.models import Flag, NoteKind, RunStatus, Verdict

logger = logging.getLogger(__name__)


class EventKind(enum.StrEnum):
    STATUS = "status"
    ITERATION = "iteration"
    OUTPUT = "output"
    TEXT = "text"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    USAGE = "usage"
    ERROR = "error"
    AGENT_FINISHED = "agent_finished"
    COMMIT = "commit"
    CHECK = "check"
    GATE = "gate"
    VERDICT = "verdict"
    NOTE = "note"
    HOOK = "hook"


class Payload(msgspec.Struct, frozen=True, tag_field="event"):
    """What an event says; its subclass is its kind."""

    _kinds: ClassVar[dict[type, EventKind]] = {}

    @property
    def kind(self) -> EventKind:
        kind = Payload._kinds.get(type(self))
        if kind is None:  # once per class: it is asked for every event
            kind = Payload._kinds[type(self)] = EventKind(str(self.__struct_config__.tag))
        return kind


class StatusChanged(Payload, frozen=True, tag=EventKind.STATUS.value):
    status: RunStatus
    error: str | None = None
    retry_at: float | None = None  # a deferred run resumes then (epoch seconds)


class IterationMarked(Payload, frozen=True, tag=EventKind.ITERATION.value):
    """An iteration started (with the run's last iteration number, `max`) or finished (with
    whether its verdict was done)."""

    phase: Literal["started", "finished"]
    max: int | None = None
    done: bool | None = None


class OutputPrinted(Payload, frozen=True, tag=EventKind.OUTPUT.value):
    """A line an agent's process printed, or looptui's own line about its output."""

    line: str
    stream: str = "stdout"


class AgentSaid(Payload, frozen=True, tag=EventKind.TEXT.value):
    text: str


class ToolCalled(Payload, frozen=True, tag=EventKind.TOOL_CALL.value):
    name: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolAnswered(Payload, frozen=True, tag=EventKind.TOOL_RESULT.value):
    name: str
    output: str = ""
    is_error: bool = False


class TokensUsed(Payload, frozen=True, tag=EventKind.USAGE.value):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class ErrorReported(Payload, frozen=True, tag=EventKind.ERROR.value):
    message: str


class AgentFinished(Payload, frozen=True, tag=EventKind.AGENT_FINISHED.value):
    """The agent's own claim about its turn (never the verdict)."""

    ok: bool
    message: str = ""
    exit_code: int | None = None


class Committed(Payload, frozen=True, tag=EventKind.COMMIT.value):
    """An iteration's work was committed; the diff is the run's, against its base."""

    sha: str
    files: int = 0
    added: int = 0
    removed: int = 0


class CheckRan(Payload, frozen=True, tag=EventKind.CHECK.value):
    name: str
    command: str
    exit_code: int | None
    passed: bool
    timed_out: bool = False
    duration: float = 0.0
    tail: str = ""


class GateRan(Payload, frozen=True, tag=EventKind.GATE.value):
    """The checks ran again on a clean checkout of the commit that would merge."""

    commit: str
    passed: bool
    duration: float = 0.0
    ignored: tuple[str, ...] = ()  # files the turn wrote that git ignores


class VerdictGiven(Payload, frozen=True, tag=EventKind.VERDICT.value):
    done: bool
    evaluator: str
    confidence: float = 1.0
    reasons: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()
    unknown: bool = False
    flags: tuple[Flag, ...] = ()

    @classmethod
    def of(cls, verdict: Verdict) -> VerdictGiven:
        return cls(
            done=verdict.done,
            evaluator=verdict.evaluator,
            confidence=verdict.confidence,
            reasons=verdict.reasons,
            next_steps=verdict.next_steps,
            unknown=verdict.unknown,
            flags=verdict.flags,
        )

    @property
    def verdict(self) -> Verdict:
        return Verdict(
            done=self.done,
            evaluator=self.evaluator,
            confidence=self.confidence,
            reasons=self.reasons,
            next_steps=self.next_steps,
            unknown=self.unknown,
            flags=self.flags,
        )


class NoteAdded(Payload, frozen=True, tag=EventKind.NOTE.value):
    note: NoteKind = msgspec.field(name="kind")  # stored as "kind", as it always was
    text: str = ""


class HookRan(Payload, frozen=True, tag=EventKind.HOOK.value):
    """A lifecycle hook ran: on which event (`hook`, as `looptui.toml` names it), how it
    ended (`exit_code` None: it timed out or could not start) and the end of its output.
    `blocked`: it exited 2 on an event that can be stopped, and stopped it."""

    hook: str
    command: str
    exit_code: int | None
    blocked: bool = False
    timed_out: bool = False
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""


AnyPayload = (
    StatusChanged
    | IterationMarked
    | OutputPrinted
    | AgentSaid
    | ToolCalled
    | ToolAnswered
    | TokensUsed
    | ErrorReported
    | AgentFinished
    | Committed
    | CheckRan
    | GateRan
    | VerdictGiven
    | NoteAdded
    | HookRan
)

PAYLOAD_TYPES: dict[EventKind, type[Payload]] = {
    EventKind(str(cls.__struct_config__.tag)): cls
    for cls in (
        StatusChanged,
        IterationMarked,
        OutputPrinted,
        AgentSaid,
        ToolCalled,
        ToolAnswered,
        TokensUsed,
        ErrorReported,
        AgentFinished,
        Committed,
        CheckRan,
        GateRan,
        VerdictGiven,
        NoteAdded,
        HookRan,
    )
}


class Event(msgspec.Struct, frozen=True):
    """One event of one run, as the store holds it; `id` is its row id, once written."""

    run_id: str
    payload: AnyPayload
    iteration: int = 0
    ts: float = 0.0
    id: int | None = None

    @property
    def kind(self) -> EventKind:
        return self.payload.kind


# What a subscription gets of output lines: every one, or only each run's newest of each
# batch (for a view that shows the newest line of each run, such as the grid).
Lines = Literal["all", "newest"]


def payload_fields(payload: Payload) -> dict[str, Any]:
    """A payload as plain JSON data, without its tag: what the store keeps in `data`."""
    data: dict[str, Any] = msgspec.to_builtins(payload, enc_hook=str)
    data.pop("event", None)
    return data


def payload_from_fields(kind: EventKind, data: object) -> AnyPayload:
    """The payload of kind `kind` from its plain data; ValueError naming what is wrong."""
    try:
        payload: AnyPayload = msgspec.convert(data, PAYLOAD_TYPES[kind])  # type: ignore[assignment]
    except msgspec.ValidationError as exc:
        raise ValueError(f"a {kind} event does not fit its type: {exc}") from None
    return payload


_DECODERS = {kind: msgspec.json.Decoder(cls) for kind, cls in PAYLOAD_TYPES.items()}


def decode_payload(kind: str, text: str | bytes) -> AnyPayload:
    """A stored event's payload. A row that no longer fits its type (written by a looptui
    that is gone, or damaged) reads as an error event saying so, never as an exception that
    would hide the rest of the run."""
    try:
        payload: AnyPayload = _DECODERS[EventKind(kind)].decode(text)  # type: ignore[assignment]
    except msgspec.ValidationError as exc:
        logger.warning("unreadable stored %s event: %s", kind, exc)
        return ErrorReported(f"[looptui: a stored {kind} event could not be read: {exc}]")
    except msgspec.DecodeError:  # lone surrogates (undecodable bytes an agent printed), which
        # the store escapes and msgspec's decoder refuses: the standard library reads them
        try:
            return payload_from_fields(EventKind(kind), json.loads(text))
        except ValueError as exc:
            logger.warning("unreadable stored %s event: %s", kind, exc)
            return ErrorReported(f"[looptui: a stored {kind} event could not be read: {exc}]")
    except ValueError as exc:
        logger.warning("unreadable stored %s event: %s", kind, exc)
        return ErrorReported(f"[looptui: a stored {kind} event could not be read: {exc}]")
    return payload
