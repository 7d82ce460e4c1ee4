"""A loopback fake model server that speaks the real wire protocols, with a scripted model.

Anthropic Messages (JSON and SSE, `tool_use`), OpenAI Chat Completions (JSON and SSE, streamed
tool calls) and OpenAI Responses (JSON and SSE, function calls), exactly as the official SDKs,
Claude Code and Codex expect them (`/work/shared/reference/agent-formats.md` §5). Every POST
to a model path takes the next reply of the script, whatever the protocol; a `Fault` injects
an error instead. It serves from a thread, so that in-process async SDK clients and
subprocess CLIs can both use it while a test's event loop runs. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = (12, 20)  # input and output tokens of every reply


@dataclass(frozen=True)
class ToolUse:
    """The model calls a tool (after an optional sentence); `id` is the call's id (a fresh
    one when empty)."""

    name: str
    input: dict[str, Any]
    text: str = ""
    id: str = ""


@dataclass(frozen=True)
class Say:
    """The model answers with text and ends its turn."""

    text: str


@dataclass(frozen=True)
class Fault:
    """Instead of a reply: "401", "429" (with `retry_after` seconds when set), "500", "529"
    (overloaded), "overloaded-in-stream" (Anthropic: an error event in a 200 answer),
    "reset" (no response at all), "truncated" (the stream stops early), "malformed" (a
    stream event that is not JSON) or "hang" (nothing for `seconds`)."""

    kind: str
    retry_after: float | None = None
    seconds: float = 30.0


Reply = ToolUse | Say | Fault


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    protocol: str  # "anthropic", "chat", "responses", or "" for anything else


@dataclass
class _Script:
    replies: list[Reply] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def record(self, request: Recorded) -> None:
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()

    def next(self) -> Reply:
        with self.lock:
            return self.replies.pop(0) if self.replies else Say("fake model: script exhausted")


class FakeModelServer:
    """`with FakeModelServer([ToolUse(...), Say(...)]) as server:` then use `server.url`."""

    def __init__(self, replies: Iterable[Reply] = ()) -> None:
        self._script = _Script(list(replies))
        self._stopping = threading.Event()
        script, stopping = self._script, self._stopping

        class Handler(_Handler):
            pass

        Handler.script, Handler.stopping = script, stopping
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[Recorded]:
        return self._script.requests

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until `count` requests have arrived (False after `timeout`): the server
        records them on its own threads. From async code: `asyncio.to_thread(...)`."""
        with self._script.arrived:
            return self._script.arrived.wait_for(
                lambda: len(self._script.requests) >= count, timeout
            )

    def add(self, *replies: Reply) -> None:
        with self._script.lock:
            self._script.replies.extend(replies)

    def __enter__(self) -> FakeModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # hanging handlers give up
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)


class _Handler(BaseHTTPRequestHandler):
    script: _Script
    stopping: threading.Event
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # Codex probes a websocket on GET /v1/responses
        self.script.record(Recorded("GET", self.path, self._headers(), None, ""))
        self._json(404, {"error": {"type": "not_found", "message": "no such endpoint"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        path = self.path.split("?", 1)[0]
        protocol = (
            "anthropic"
            if path.endswith("/messages")
            else "chat"
            if path.endswith("/chat/completions")
            else "responses"
            if path.endswith("/responses")
            else ""
        )
        self.script.record(Recorded("POST", self.path, self._headers(), body, protocol))
        if not protocol or not isinstance(body, dict):
            self._json(404, {"error": {"type": "not_found", "message": f"no model at {path}"}})
            return
        reply = self.script.next()
        stream = bool(body.get("stream"))
        if isinstance(reply, Fault):
            self._fault(reply, protocol, stream)
            return
        events = list(_EVENTS[protocol](reply, body))
        if stream:
            self._stream(protocol, events)
        else:
            self._json(200, _FINAL[protocol](reply, body))

    # -- writing -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _json(self, status: int, payload: object, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send_event(self, protocol: str, event: dict[str, Any] | str) -> None:
        if isinstance(event, str):  # a raw data line ("[DONE]", or garbage)
            chunk = f"data: {event}\n\n"
        elif protocol == "chat":
            chunk = f"data: {json.dumps(event)}\n\n"
        else:
            chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        self.wfile.write(chunk.encode())
        self.wfile.flush()

    def _stream(self, protocol: str, events: list[dict[str, Any] | str]) -> None:
        self._start_stream()
        for event in events:
            self._send_event(protocol, event)

    def _fault(self, fault: Fault, protocol: str, stream: bool) -> None:
        kind = fault.kind
        if kind in ("401", "429", "500", "529"):
            status = int(kind) if kind != "529" or protocol == "anthropic" else 503
            kinds = {
                "401": "authentication_error",
                "429": "rate_limit_error",
                "500": "api_error",
                "529": "overloaded_error",
            }
            message = {
                "401": "invalid x-api-key",
                "429": "rate limited",
                "500": "internal error",
                "529": "overloaded",
            }[kind]
            extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after else {}
            if protocol == "anthropic":
                payload: object = {
                    "type": "error",
                    "error": {"type": kinds[kind], "message": message},
                }
            else:
                payload = {"error": {"message": message, "type": kinds[kind], "code": None}}
            self._json(status, payload, extra)
        elif kind == "overloaded-in-stream":  # Anthropic's overload inside a 200 answer
            self._start_stream()
            events = list(_EVENTS[protocol](Say("cut short"), {}))
            self._send_event(protocol, events[0])
            error = {"type": "overloaded_error", "message": "Overloaded"}
            self._send_event(protocol, {"type": "error", "error": error})
            self.close_connection = True
        elif kind == "reset":
            self._reset()
        elif kind == "hang":
            self.stopping.wait(fault.seconds)
            self._reset()
        elif kind in ("truncated", "malformed"):
            events = list(_EVENTS[protocol](Say("This answer never ends properly."), {}))
            self._start_stream()
            for event in events[:2]:
                self._send_event(protocol, event)
            if kind == "malformed":
                self._send_event(protocol, "{this is not json")
            self._reset()
        else:
            raise ValueError(f"unknown fault {kind!r}")

    def _reset(self) -> None:
        """Drop the connection at once (an RST, not an orderly close)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()
        except OSError:
            pass


# -- Anthropic Messages ------------------------------------------------------------------------


def _anthropic_blocks(reply: ToolUse | Say) -> list[dict[str, Any]]:
    if isinstance(reply, Say):
        return [{"type": "text", "text": reply.text}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    call_id = reply.id or "toolu_" + uuid.uuid4().hex[:20]
    return [*blocks, {"type": "tool_use", "id": call_id, "name": reply.name, "input": reply.input}]


def _anthropic_final(reply: ToolUse | Say, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_" + uuid.uuid4().hex[:20],
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": _anthropic_blocks(reply),
        "stop_reason": "tool_use" if isinstance(reply, ToolUse) else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": USAGE[0], "output_tokens": USAGE[1]},
    }


def _anthropic_events(reply: ToolUse | Say, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    final = _anthropic_final(reply, body)
    start = {**final, "content": [], "stop_reason": None}
    start["usage"] = {
        "input_tokens": USAGE[0],
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    for index, block in enumerate(final["content"]):
        if block["type"] == "text":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": block["text"]},
            }
        else:
            empty = {**block, "input": {}}
            yield {"type": "content_block_start", "index": index, "content_block": empty}
            arguments = json.dumps(block["input"])
            half = len(arguments) // 2
            for part in ("", arguments[:half], arguments[half:]):
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": part},
                }
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": USAGE[1]},
    }
    yield {"type": "message_stop"}


# -- OpenAI Chat Completions -------------------------------------------------------------------


def _chat_final(reply: ToolUse | Say, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(reply, Say):
        message["content"] = reply.text
    else:
        message["content"] = reply.text or None
        message["tool_calls"] = [
            {
                "id": reply.id or "call_" + uuid.uuid4().hex[:12],
                "type": "function",
                "function": {"name": reply.name, "arguments": json.dumps(reply.input)},
            }
        ]
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-fake"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if isinstance(reply, ToolUse) else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": USAGE[0],
            "completion_tokens": USAGE[1],
            "total_tokens": sum(USAGE),
        },
    }


def _chat_events(reply: ToolUse | Say, body: dict[str, Any]) -> Iterator[dict[str, Any] | str]:
    final = _chat_final(reply, body)
    base = {k: final[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": None})
    message = final["choices"][0]["message"]
    if message.get("content"):
        text = message["content"]
        half = len(text) // 2
        yield chunk({"content": text[:half]})
        yield chunk({"content": text[half:]})
    for index, call in enumerate(message.get("tool_calls", [])):
        head = {**call, "index": index, "function": {**call["function"], "arguments": ""}}
        yield chunk({"tool_calls": [head]})
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, final["choices"][0]["finish_reason"])
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": final["usage"]}
    yield "[DONE]"


# -- OpenAI Responses --------------------------------------------------------------------------


def _responses_items(reply: ToolUse | Say) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    text = reply.text
    if text:
        items.append(
            {
                "type": "message",
                "id": "msg_" + uuid.uuid4().hex[:12],
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    if isinstance(reply, ToolUse):
        items.append(
            {
                "type": "function_call",
                "id": "fc_" + uuid.uuid4().hex[:12],
                "call_id": reply.id or "call_" + uuid.uuid4().hex[:12],
                "name": reply.name,
                "arguments": json.dumps(reply.input),
                "status": "completed",
            }
        )
    return items


def _responses_final(reply: ToolUse | Say, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "resp_" + uuid.uuid4().hex[:12],
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model", "gpt-fake"),
        "status": "completed",
        "output": _responses_items(reply),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": USAGE[0],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": USAGE[1],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": sum(USAGE),
        },
    }


def _responses_events(reply: ToolUse | Say, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    final = _responses_final(reply, body)
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            events += [
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                },
                {"type": "response.content_part.added", **where, "part": part},
                {"type": "response.output_text.delta", **where, "delta": text, "logprobs": []},
                {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
                {
                    "type": "response.content_part.done",
                    **where,
                    "part": {**part, "text": text},
                },
            ]
        else:
            arguments = item["arguments"]
            where = {"item_id": item["id"], "output_index": index}
            events += [
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                },
                {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
                {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
            ]
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": final})
    for number, event in enumerate(events):
        yield {**event, "sequence_number": number}


_EVENTS: dict[str, Any] = {
    "anthropic": _anthropic_events,
    "chat": _chat_events,
    "responses": _responses_events,
}
_FINAL: dict[str, Any] = {
    "anthropic": _anthropic_final,
    "chat": _chat_final,
    "responses": _responses_final,
}
