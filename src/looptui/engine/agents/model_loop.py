"""One turn of a tool-using agent on a model API, whatever the provider.

Ask the model, run the tools it calls, give it their results, and repeat until it answers
without calling a tool (or `max_turns` round trips). A provider (`ModelBackend`) only knows its
wire format; faults are handled here, the same for all: 429, 5xx, overload, reset
connections, timeouts and broken streams are retried with backoff (honouring `retry-after`),
then the turn fails with a one-line reason; but a 429 whose headers say when the limit resets
raises `UsageLimited` instead (at once when the reset is further off than any retry would
wait), and the run is deferred to that time. The conversation is saved, redacted, in the run's
private directory after every round trip and before every tool call, so that the next
iteration, or a restart, continues it; its token is announced (`Session`) before the first
request. A call that was running when looptui was killed is never run again: the resumed
conversation answers it as interrupted (`INTERRUPTED`), and the model decides. Secrets are
redacted from tool output before the model or an event sees it, and the model's commands
never get the API key. Nothing but CancelledError and UsageLimited leaves `run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from looptui.engine.agents.base import (
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    Session,
    SystemPrompt,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from looptui.engine.agents.limits import reset_from_headers, seconds_after
from looptui.engine.agents.skill_tools import skill_tools
from looptui.engine.agents.tools import TOOLS, Tool, Toolbox, toolset
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable, UsageLimited

DEFAULT_MAX_TURNS = 50
BACKOFF_START = 0.5
BACKOFF_CAP = 20.0
RETRY_AFTER_CAP = 120.0
RETRIED_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
STREAMED_RETRIED = frozenset({"overloaded_error", "api_error", "rate_limit_error"})
SYSTEM_PROMPT = (
    "You are a coding agent working in a git repository (your working directory). Use the "
    "tools to read, search, edit and test the code; paths are relative to the repository "
    "root. Make the change the task asks for, check it, then answer with a short summary of "
    "what you did."
)
INTERRUPTED = (
    "interrupted: looptui was restarted while this tool call ran; it was not run again. "
    "Check the worktree's state before you repeat it."
)
_TOKEN = re.compile(r"^conversation-[A-Za-z0-9_-]+\.json$")


@dataclass(frozen=True)
class Call:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: Mapping[str, Any] | None  # None: its arguments were not valid JSON
    raw_arguments: str = ""


@dataclass(frozen=True)
class Reply:
    text: str
    calls: tuple[Call, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0


class Fault(Exception):
    """A failed request: whether to try again, after how long at least, and why; and, for a
    usage or rate limit that said so, when it resets (epoch seconds)."""

    def __init__(
        self,
        reason: str,
        retry: bool,
        retry_after: float | None = None,
        reset_at: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.retry_after = reason, retry, retry_after
        self.reset_at = reset_at


class ModelBackend(Protocol):
    """A provider's wire format. `messages` is the provider's own conversation format."""

    kind: str
    system: str  # the system prompt (or instructions) every request carries

    def start(self, prompt: str) -> list[dict[str, Any]]: ...

    def add_prompt(self, messages: list[dict[str, Any]], prompt: str) -> None: ...

    async def ask(self, messages: list[dict[str, Any]]) -> Reply:
        """One request; raises `Fault` for anything that went wrong."""
        ...

    def add_reply(self, messages: list[dict[str, Any]], reply: Reply) -> None: ...

    def add_results(
        self, messages: list[dict[str, Any]], results: list[tuple[Call, str, bool]]
    ) -> None:
        """Answer tool calls; after results already given to the same reply, the new ones
        join them where the provider wants all of a reply's results in one message."""
        ...

    def unanswered(self, messages: list[dict[str, Any]]) -> list[Call]:
        """The calls of the conversation's last reply that have no result yet: what was
        running when the process died (the conversation is saved before each call)."""
        ...

    async def close(self) -> None:
        """Close the client's connections."""
        ...


@dataclass
class Conversation:
    path: Path
    messages: list[dict[str, Any]] = field(default_factory=list)

    def save(self, redact: Callable[[str], str]) -> None:
        """Write the conversation, redacted, readable by its owner only. A new file replaces
        the old at once, so that a crash mid-write never leaves half a conversation."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = redact(json.dumps({"messages": self.messages}))
        # mkstemp creates the file 0600
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


class ModelAgent:
    """An agent on a model API: the turn loop, retries, tools and the saved conversation."""

    default_key_env = ""

    def __init__(self, config: AgentConfig) -> None:
        self.name = config.name
        self.config = config
        self.key_env = config.api_key_env or self.default_key_env

    def api_key(self, environ: Mapping[str, str]) -> str | None:
        return environ.get(self.key_env) or self.config.env.get(self.key_env)

    def preflight(self, environ: Mapping[str, str], cwd: Path) -> None:
        if not self.api_key(environ):
            raise AgentUnavailable(
                f"agent {self.name!r}: set {self.key_env} to the API key "
                f"(or api_key_env to the variable that holds it)"
            )

    def backend(self, task: AgentTask, api_key: str) -> ModelBackend:
        raise NotImplementedError

    async def run(self, task: AgentTask) -> AsyncGenerator[AgentEvent, None]:
        api_key = self.api_key(task.environ)
        if not api_key:
            message = f"{self.key_env} is not set"
            yield AgentError(message)
            yield Finished(ok=False, message=message, cannot_start=True)
            return
        finished = False
        try:
            backend = self.backend(task, api_key)
            try:
                async with contextlib.aclosing(self._turn(task, backend)) as events:
                    async for event in events:
                        finished = isinstance(event, Finished)
                        yield event
            finally:
                await backend.close()
        except UsageLimited:  # not a failure: the runner defers the run to the reset
            raise
        except Exception as exc:  # a bug or a broken scratch directory: fail the turn, no more
            if finished:
                return
            message = task.redact(f"the agent failed: {type(exc).__name__}: {_short(str(exc))}")
            yield AgentError(message)
            yield Finished(ok=False, message=message)

    async def _turn(
        self, task: AgentTask, backend: ModelBackend
    ) -> AsyncGenerator[AgentEvent, None]:
        config = self.config
        conversation, interrupted = self._conversation(task, backend)
        token = conversation.path.name
        yield Session(token)  # stored before the first request: a kill mid-turn continues it
        yield SystemPrompt(backend.system)  # stored with the prompt, before it is sent
        for call in interrupted:
            yield ToolResult(call.name, INTERRUPTED, is_error=True)
        # The model's commands get the task's environment, but not the key it is driven with
        environ = {**task.environ, **config.env}
        environ.pop(self.key_env, None)
        toolbox = Toolbox(
            task.worktree,
            environ,
            command_timeout=config.command_timeout,
            output_cap=config.output_cap,
            tools=task_tools(task),
            review_range=task.review_range,
            skills=task.skills,
        )
        max_turns = config.max_turns or DEFAULT_MAX_TURNS
        for _ in range(max_turns):
            try:
                reply = await self._ask(backend, conversation.messages)
            except Fault as fault:
                conversation.save(task.redact)
                reason = task.redact(fault.reason)
                yield AgentError(reason)
                if fault.reset_at is not None:  # the session is kept: the resume continues it
                    raise UsageLimited(reason, fault.reset_at) from None
                yield Finished(ok=False, message=reason, resume_token=token)
                return
            yield Usage(reply.input_tokens, reply.output_tokens, self._cost(reply))
            if reply.text.strip():
                yield Text(task.redact(reply.text))
            backend.add_reply(conversation.messages, reply)
            if not reply.calls:
                conversation.save(task.redact)
                yield Finished(ok=True, message=task.redact(reply.text), resume_token=token)
                return
            results: list[tuple[Call, str, bool]] = []
            for call in reply.calls:
                # Saved with the call and the results so far before it runs: a kill while it
                # runs leaves exactly this, and the next turn will not run the call again
                pending = Conversation(conversation.path, list(conversation.messages))
                if results:
                    backend.add_results(pending.messages, results)
                pending.save(task.redact)
                yield ToolCall(call.name, _redacted(dict(call.arguments or {}), task.redact))
                if call.arguments is None:
                    output, failed = f"the arguments are not valid JSON: {call.raw_arguments}", True
                else:
                    output, failed = await toolbox.call(call.name, call.arguments)
                # Secrets a command printed (`env`) go neither to the model nor to the events
                output = task.redact(output)
                yield ToolResult(call.name, output, failed)
                results.append((call, output, failed))
            backend.add_results(conversation.messages, results)
            conversation.save(task.redact)
        message = f"stopped after {max_turns} tool round trips without a final answer"
        yield AgentError(message)
        yield Finished(ok=False, message=message, resume_token=token)

    def _conversation(
        self, task: AgentTask, backend: ModelBackend
    ) -> tuple[Conversation, list[Call]]:
        """The saved conversation when the task continues one, else a new one, with the task's
        prompt; and the calls it had left running, now answered as interrupted."""
        path = task.scratch_dir / f"conversation-{self.name}.json"
        token = task.resume_token
        if token and _TOKEN.match(token) and (task.scratch_dir / token).is_file():
            try:
                saved = json.loads((task.scratch_dir / token).read_text(encoding="utf-8"))
                messages = saved["messages"]
                if isinstance(messages, list) and messages:
                    interrupted = backend.unanswered(messages)
                    if interrupted:  # the process died while they ran: never run them twice
                        backend.add_results(
                            messages, [(call, INTERRUPTED, True) for call in interrupted]
                        )
                    backend.add_prompt(messages, task.prompt)
                    return Conversation(path, messages), interrupted
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass  # unreadable: start afresh rather than fail the turn
        return Conversation(path, backend.start(task.prompt)), []

    async def _ask(self, backend: ModelBackend, messages: list[dict[str, Any]]) -> Reply:
        attempts = 1 + self.config.max_retries
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(self.config.request_timeout):  # the whole answer
                    return await backend.ask(messages)
            except TimeoutError:
                fault = Fault(f"no answer within {self.config.request_timeout:g}s", retry=True)
            except Fault as raised:
                fault = raised
            # a limit that resets later than any retry would wait is final now
            far_off = fault.reset_at is not None and fault.reset_at - time.time() > RETRY_AFTER_CAP
            if not fault.retry or attempt == attempts or far_off:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise Fault(f"{fault.reason}{tries}", False, reset_at=fault.reset_at) from None
            backoff = min(BACKOFF_CAP, BACKOFF_START * 2 ** (attempt - 1))
            delay = backoff * (0.5 + random.random() / 2)
            if fault.retry_after is not None:
                delay = max(delay, min(fault.retry_after, RETRY_AFTER_CAP))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _cost(self, reply: Reply) -> float:
        return (
            reply.input_tokens * self.config.input_price
            + reply.output_tokens * self.config.output_price
        ) / 1_000_000


def tool_specs(task: AgentTask | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """The tools a task's model is offered (the coding set when no task is given)."""
    tools = TOOLS if task is None else task_tools(task)
    return [(tool.name, tool.description, dict(tool.parameters)) for tool in tools]


def task_tools(task: AgentTask) -> tuple[Tool, ...]:
    """The coding tools, or a reviewer's read-only ones (see `toolset`), and the skill tools
    when the task has skills (read-only, so a reviewer has them too)."""
    chosen = toolset(
        read_only=task.read_only,
        commands=task.allow_commands,
        review=task.review_range is not None,
    )
    return (*chosen, *skill_tools(task.skills))


def system_prompt(task: AgentTask) -> str:
    """The task's own system prompt, or the coding agent's, with the task's system text."""
    base = SYSTEM_PROMPT if task.system_prompt is None else task.system_prompt
    return base + (f"\n\n{task.system}" if task.system else "")


def parse_arguments(raw: str) -> Mapping[str, Any] | None:
    """A tool call's JSON arguments; None when the model sent something else."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def fault_of(exc: Exception, timeout: float) -> Fault:
    """What an exception from an SDK request means: retry or not, and the reason."""
    import anthropic
    import openai

    # The SDKs' HTTP library (httpx, or httpx2 in newer SDKs) raises its own errors while a
    # stream is read; they are told by their module, so as not to depend on which it is.
    transport = type(exc).__module__.split(".")[0].startswith("httpx")

    status_errors = (anthropic.APIStatusError, openai.APIStatusError)
    if isinstance(exc, status_errors):
        status = exc.status_code
        if status < 400:  # an error event inside a streamed answer (Anthropic's overload)
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            kind = str(error.get("type")) if isinstance(error, dict) else "error"
            retry = kind in STREAMED_RETRIED
            return Fault(f"the model API reported {kind} in its answer", retry)
        headers = exc.response.headers
        retry_after = _retry_after(headers.get("retry-after"))
        if retry_after is None and headers.get("retry-after-ms"):
            retry_after = _retry_after(headers.get("retry-after-ms"), scale=0.001)
        kind = {429: "rate limited", 529: "overloaded", 503: "unavailable"}.get(status, "")
        detail = kind or _short(str(exc.message))
        retry = status in RETRIED_STATUSES or status >= 500
        # only a 429 is a usage limit; when its headers say when it resets, the run waits
        reset_at = reset_from_headers(dict(headers), time.time()) if status == 429 else None
        return Fault(f"HTTP {status} ({detail})", retry, retry_after, reset_at)
    timeouts = anthropic.APITimeoutError | openai.APITimeoutError | TimeoutError
    if isinstance(exc, timeouts) or (transport and "Timeout" in type(exc).__name__):
        return Fault(f"no answer within {timeout:g}s", retry=True)
    if isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Fault(f"connection failed ({_short(str(cause) or type(cause).__name__)})", True)
    if transport or isinstance(exc, ConnectionError | EOFError):
        return Fault(f"the stream broke off ({type(exc).__name__})", retry=True)
    if isinstance(exc, ValueError | KeyError | TypeError | anthropic.APIError | openai.APIError):
        return Fault(f"malformed answer from the model API ({_short(str(exc))})", retry=True)
    return Fault(f"unexpected {type(exc).__name__}: {_short(str(exc))}", retry=False)


def _retry_after(value: str | None, scale: float = 1.0, now: float | None = None) -> float | None:
    """A `retry-after` header's seconds: a number (times `scale`: `retry-after-ms` is never a
    date) or an HTTP date, counted from `now` (default: the clock); None when it is neither,
    and backoff applies."""
    seconds = seconds_after(value, time.time() if now is None else now)
    return None if seconds is None else seconds * scale


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """Every string inside a JSON-like value, redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:160]
