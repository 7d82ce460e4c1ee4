"""The Anthropic and OpenAI agents: the real SDKs against the fake model server.

Every fault class is injected by the server: retried with backoff (a 429's retry-after
honoured) and then, when it goes on, a failed turn with a clear reason; never an exception.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fake_models import FakeModelServer, Fault, Say, ToolUse
from looptui.engine.agents import AgentTask, Finished, ToolCall, ToolResult, Usage, build_agent
from looptui.engine.agents.base import AgentError, AgentEvent, Text
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable
from looptui.engine.secrets import REDACTED, Redactor

KEY = "sk-test-" + "a" * 32
BACKENDS = ["anthropic", "chat", "responses"]


def config(server: FakeModelServer, backend: str, **options: Any) -> AgentConfig:
    # generous: the first request of a process builds the SDK's models, slow on a loaded machine
    settings: dict[str, Any] = {"max_retries": 2, "request_timeout": 30.0, **options}
    if backend == "anthropic":
        return AgentConfig(
            name="claude-api", kind="anthropic", base_url=server.url, api_key_env="K", **settings
        )
    return AgentConfig(
        name="gpt-api",
        kind="openai",
        api=backend,
        base_url=server.url + "/v1",
        api_key_env="K",
        **settings,
    )


def task(tmp_path: Path, prompt: str = "Write hello.txt", **fields: Any) -> AgentTask:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    environ = {"K": KEY, "PATH": os.environ["PATH"], **fields.pop("environ", {})}
    return AgentTask("r1", 1, worktree, prompt, tmp_path / "scratch", environ, **fields)


async def turn(agent_config: AgentConfig, agent_task: AgentTask) -> list[AgentEvent]:
    return [event async for event in build_agent(agent_config).run(agent_task)]


def last_user_text(request_body: dict[str, Any], backend: str) -> str:
    items = request_body["input"] if backend == "responses" else request_body["messages"]
    return json.dumps(items)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_tool_using_turn_and_its_resumed_sequel(tmp_path: Path, backend: str) -> None:
    with FakeModelServer() as server:
        server.add(
            ToolUse("write_file", {"path": "hello.txt", "content": "hi\n"}, text="Writing."),
            Say("Wrote hello.txt."),
            ToolUse("read_file", {"path": "hello.txt"}),
            Say("It says hi."),
        )
        agent_config = config(server, backend, input_price=3.0, output_price=15.0)
        events = await turn(agent_config, task(tmp_path))
        assert (tmp_path / "wt/hello.txt").read_text() == "hi\n"
        assert ToolCall("write_file", {"path": "hello.txt", "content": "hi\n"}) in events
        assert ToolResult("write_file", "wrote hello.txt (1 line)", False) in events
        usages = [e for e in events if isinstance(e, Usage)]
        assert [(u.input_tokens, u.output_tokens) for u in usages] == [(12, 20), (12, 20)]
        assert usages[0].cost_usd == pytest.approx((12 * 3 + 20 * 15) / 1e6)
        final = events[-1]
        assert isinstance(final, Finished) and final.ok and final.message == "Wrote hello.txt."
        assert final.resume_token and (tmp_path / "scratch" / final.resume_token).is_file()
        assert all(
            r.headers.get("x-api-key") == KEY or r.headers.get("authorization") == f"Bearer {KEY}"
            for r in server.requests
        )

        sequel = await turn(
            agent_config, task(tmp_path, "What does it say?", resume_token=final.resume_token)
        )
        assert isinstance(sequel[-1], Finished) and sequel[-1].message == "It says hi."
        resumed = last_user_text(server.requests[2].body or {}, backend)
        assert "Write hello.txt" in resumed and "What does it say?" in resumed  # one conversation


FAULTS = [
    Fault("429", retry_after=0.6),
    Fault("500"),
    Fault("529"),
    Fault("reset"),
    Fault("truncated"),
    Fault("malformed"),
    Fault("hang", seconds=6),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fault", FAULTS, ids=[fault.kind for fault in FAULTS])
async def test_a_fault_is_retried_then_the_turn_goes_on(
    tmp_path: Path, backend: str, fault: Fault
) -> None:
    with FakeModelServer([fault, Say("Recovered.")]) as server:
        started = time.monotonic()
        # only a hang needs a short timeout, cutting its 6 s; the answer that follows must not
        # meet it (a Responses answer has been seen to take 1 s here, tests run in parallel)
        timeout = 2.0 if fault.kind == "hang" else 15.0
        events = await turn(config(server, backend, request_timeout=timeout), task(tmp_path))
        waited = time.monotonic() - started
        final = events[-1]
        assert isinstance(final, Finished) and final.ok and final.message == "Recovered."
        assert len([r for r in server.requests if r.method == "POST"]) == 2
        assert waited >= 0.25  # a backoff of at least half of its first 0.5 s
        if fault.retry_after:
            assert waited >= fault.retry_after  # retry-after honoured


REASONS = {
    "429": "HTTP 429 (rate limited) after 2 attempts",
    "500": "HTTP 500",
    "529": "after 2 attempts",  # 529 overloaded from Anthropic; 503 from an OpenAI server
    "reset": "after 2 attempts",
    "truncated": "after 2 attempts",
    "malformed": "after 2 attempts",
    "hang": "no answer within 1s after 2 attempts",
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(REASONS))
async def test_a_fault_that_goes_on_fails_the_turn_cleanly(
    tmp_path: Path, backend: str, kind: str
) -> None:
    # a 429 that says when its limit resets defers the run instead (tests/test_deferral.py)
    faults = [Fault(kind, seconds=3)] * 2
    with FakeModelServer(faults) as server:
        agent_config = config(server, backend, max_retries=1, request_timeout=1.0)
        events = await turn(agent_config, task(tmp_path))
    errors = [e.message for e in events if isinstance(e, AgentError)]
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok
    assert len(errors) == 1 and REASONS[kind] in errors[0] and final.message == errors[0]
    if kind == "529":
        overloaded = "HTTP 529 (overloaded)" if backend == "anthropic" else "HTTP 503"
        assert errors[0].startswith(overloaded)
    assert "\n" not in errors[0]


async def test_an_overload_inside_a_streamed_answer_is_retried(tmp_path: Path) -> None:
    with FakeModelServer([Fault("overloaded-in-stream"), Say("Recovered.")]) as server:
        events = await turn(config(server, "anthropic"), task(tmp_path))
        assert len(server.requests) == 2
    final = events[-1]
    assert isinstance(final, Finished) and final.ok and final.message == "Recovered."


async def test_a_client_error_is_not_retried(tmp_path: Path) -> None:
    with FakeModelServer([Fault("401"), Say("never asked")]) as server:
        events = await turn(config(server, "anthropic"), task(tmp_path))
        assert len(server.requests) == 1  # a refused key is an answer, not a fault to wait out
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok
    assert final.message.startswith("HTTP 401") and "attempts" not in final.message


async def test_a_model_that_never_stops_calling_tools_is_cut_off(tmp_path: Path) -> None:
    with FakeModelServer([ToolUse("list_files", {})] * 3) as server:
        events = await turn(config(server, "chat", max_turns=3), task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok
    assert "stopped after 3 tool round trips" in final.message


async def test_garbage_arguments_come_back_to_the_model_as_an_error(tmp_path: Path) -> None:
    with FakeModelServer([ToolUse("write_file", {"path": 7}), Say("Sorry.")]) as server:
        events = await turn(config(server, "responses"), task(tmp_path))
    results = [e for e in events if isinstance(e, ToolResult)]
    assert (
        results and results[0].is_error and "path must be a non-empty string" in results[0].output
    )
    assert isinstance(events[-1], Finished) and events[-1].ok


async def test_secrets_never_reach_the_saved_conversation(tmp_path: Path) -> None:
    planted = "planted-" + "p" * 30
    with FakeModelServer(
        [ToolUse("run_command", {"command": "env"}), Say(f"The token is {planted}.")]
    ) as server:
        environ = {"MY_SERVICE_TOKEN": planted}
        redactor = Redactor.from_environment({"K": KEY, **environ})
        agent_task = task(tmp_path, environ=environ, redact=redactor.text)
        events = await turn(config(server, "chat"), agent_task)
    final = events[-1]
    assert isinstance(final, Finished) and final.ok and final.resume_token
    saved = (tmp_path / "scratch" / final.resume_token).read_text()
    assert planted not in saved and KEY not in saved and "[REDACTED]" in saved
    assert oct((tmp_path / "scratch" / final.resume_token).stat().st_mode & 0o777) == "0o600"
    assert any(isinstance(e, Text) for e in events)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_api_key_and_planted_secrets_stay_out_of_files_events_and_the_model(
    tmp_path: Path, backend: str
) -> None:
    """The key is read from the default variable; the model runs `env` and repeats a secret."""
    planted = "planted-" + "p" * 30
    key_env = "ANTHROPIC_API_KEY" if backend == "anthropic" else "OPENAI_API_KEY"
    with FakeModelServer(
        [ToolUse("run_command", {"command": "env"}), Say(f"Found {planted} and {KEY}.")]
    ) as server:
        environ = {key_env: KEY, "MY_SERVICE_TOKEN": planted}
        redactor = Redactor.from_environment(environ)
        agent_config = replace(config(server, backend), api_key_env=None)  # the default name
        agent_task = task(tmp_path, environ=environ, redact=redactor.text)
        events = await turn(agent_config, agent_task)
        bodies = json.dumps([request.body for request in server.requests])
        headers = server.requests[0].headers
    final = events[-1]
    assert isinstance(final, Finished) and final.ok and final.resume_token
    assert headers.get("x-api-key") == KEY or headers.get("authorization") == f"Bearer {KEY}"
    env_output = next(e.output for e in events if isinstance(e, ToolResult))
    assert "PATH=" in env_output and f"{key_env}=" not in env_output  # the model's shell lacks it
    assert "MY_SERVICE_TOKEN=[REDACTED]" in env_output
    saved = (tmp_path / "scratch" / final.resume_token).read_text()
    for secret in (KEY, planted):
        assert secret not in saved
        assert secret not in repr(events)
        assert secret not in bodies  # the command's output reached the model redacted
    assert "[REDACTED]" in saved and f"Found {REDACTED} and {REDACTED}." == final.message


async def test_a_broken_scratch_directory_fails_the_turn_without_raising(tmp_path: Path) -> None:
    (tmp_path / "scratch").write_text("a file where the directory should be")
    with FakeModelServer([Say("Done.")]) as server:
        events = await turn(config(server, "anthropic"), task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok
    assert isinstance(events[-2], AgentError) and "the agent failed" in final.message
    assert "\n" not in final.message


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_cancelled_turn_stops_at_once(tmp_path: Path, backend: str) -> None:
    with FakeModelServer([Fault("hang", seconds=10)]) as server:
        agent_config = config(server, backend, request_timeout=30.0)
        running = asyncio.create_task(turn(agent_config, task(tmp_path)))
        assert await asyncio.to_thread(server.wait_for_requests, 1, 5.0)
        started = time.monotonic()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert time.monotonic() - started < 1.0


def test_a_missing_key_is_reported_before_the_run(tmp_path: Path) -> None:
    agent = build_agent(AgentConfig(name="gpt", kind="openai", api_key_env="NO_SUCH_KEY"))
    with pytest.raises(AgentUnavailable, match="set NO_SUCH_KEY"):
        agent.preflight({"PATH": "/bin"}, tmp_path)
