"""Resuming an agent in the middle of a turn, after its supervisor was killed with SIGKILL.

Every agent announces its resumable session (`Session`) as soon as it knows it, and the runner
stores it at once. An API agent's conversation is saved before each tool call, so a kill while
the call runs leaves it unanswered; the resumed turn tells the model it was interrupted and
never runs it again. The kill is real: the turn runs in a child process whose group is
SIGKILLed while the model's command is running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env, make_repo
from fake_models import FakeModelServer, Fault, Say, ToolUse
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.agents import AgentTask, Finished, Session, ToolResult, build_agent
from looptui.engine.agents.base import AgentEvent
from looptui.engine.agents.model_loop import INTERRUPTED, Call, ModelAgent, Reply
from looptui.engine.config import CONFIG_NAME, AgentConfig
from looptui.engine.process import kill_orphans

KEY = "sk-test-" + "r" * 32
BACKENDS = ["anthropic", "chat", "responses"]
CALL_ID = "call_interrupted01"
SESSION = "94dff97a-f2de-444c-bdda-df71f6f2388e"
THREAD = "01a20cde-2e22-7bd2-99cd-43f327255d4d"


def api_config(server: FakeModelServer, backend: str) -> dict[str, Any]:
    """The agent's settings, as keywords of AgentConfig (JSON, for the child process too)."""
    settings: dict[str, Any] = {"max_retries": 0, "request_timeout": 15.0, "api_key_env": "K"}
    if backend == "anthropic":
        return {"name": "claude-api", "kind": "anthropic", "base_url": server.url, **settings}
    return {
        "name": "gpt-api",
        "kind": "openai",
        "api": backend,
        "base_url": server.url + "/v1",
        **settings,
    }


def make_task(tmp_path: Path, prompt: str, resume_token: str | None = None) -> AgentTask:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    environ = {"K": KEY, "PATH": os.environ["PATH"]}
    return AgentTask(
        "r1", 1, worktree, prompt, tmp_path / "scratch", environ, resume_token=resume_token
    )


async def turn(config: dict[str, Any], task: AgentTask) -> list[AgentEvent]:
    return [event async for event in build_agent(AgentConfig(**config)).run(task)]


CHILD = textwrap.dedent(
    """\
    import asyncio, json, sys
    from pathlib import Path
    from looptui.engine.agents import AgentTask, build_agent
    from looptui.engine.config import AgentConfig

    spec = json.loads(sys.argv[1])

    async def main():
        agent = build_agent(AgentConfig(**spec["config"]))
        task = AgentTask(
            "r1", 1, Path(spec["worktree"]), spec["prompt"], Path(spec["scratch"]), spec["environ"]
        )
        async for event in agent.run(task):
            seen = {"event": type(event).__name__, "token": getattr(event, "token", None)}
            print(json.dumps(seen), flush=True)

    asyncio.run(main())
    """
)


async def kill_mid_tool(tmp_path: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a first turn in a child process and SIGKILL its group once the model's command has
    written its marker and is still running; the events the child printed, in order."""
    task = make_task(tmp_path, "Run the slow command.")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    spec = {
        "config": config,
        "worktree": str(task.worktree),
        "scratch": str(task.scratch_dir),
        "prompt": task.prompt,
        "environ": dict(task.environ),
    }
    output = tmp_path / "child.out"
    with output.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, str(script), json.dumps(spec)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    marker = task.worktree / "marker"
    try:
        deadline = time.monotonic() + 30
        while not (marker.is_file() and marker.read_text() == "ran\n"):
            assert child.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the command never ran"
            await asyncio.sleep(0.02)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    # The command runs in a group of its own, as a real one would; the service's cleanup
    # kills what the dead supervisor left. Finding it proves the call was still running.
    assert kill_orphans(str(task.worktree)) >= 1
    return [json.loads(line) for line in output.read_text().splitlines()]


def interrupted_answer(body: dict[str, Any], backend: str) -> tuple[int, list[dict[str, Any]]]:
    """Where, in a request's conversation, the call is answered (the index of the item just
    after the assistant's call), and the results it is answered with."""
    items = body["input"] if backend == "responses" else body["messages"]
    if backend == "anthropic":
        index = next(
            i
            for i, message in enumerate(items)
            if message["role"] == "assistant"
            and any(block.get("id") == CALL_ID for block in message["content"])
        )
        results = [block for block in items[index + 1]["content"] if block["type"] == "tool_result"]
        return index + 1, results
    if backend == "chat":
        index = next(
            i
            for i, message in enumerate(items)
            if any(call["id"] == CALL_ID for call in message.get("tool_calls") or ())
        )
        return index + 1, [items[index + 1]]
    index = next(i for i, item in enumerate(items) if item.get("call_id") == CALL_ID)
    return index + 1, [items[index + 1]]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_kill_during_a_tool_call_resumes_without_running_it_again(
    tmp_path: Path, backend: str
) -> None:
    command = "echo ran >> marker; sleep 30"
    with FakeModelServer(
        [ToolUse("run_command", {"command": command}, id=CALL_ID), Say("Checked; all done.")]
    ) as server:
        config = api_config(server, backend)
        printed = await kill_mid_tool(tmp_path, config)
        kinds = [line["event"] for line in printed]
        assert "Finished" not in kinds and "ToolResult" not in kinds  # killed mid-call
        assert kinds.index("Session") < kinds.index("ToolCall")
        token = printed[kinds.index("Session")]["token"]
        assert token and (tmp_path / "scratch" / token).is_file()

        events = await turn(config, make_task(tmp_path, "Go on.", resume_token=token))

        assert events[0] == Session(token)
        assert ToolResult("run_command", INTERRUPTED, is_error=True) in events
        final = events[-1]
        assert isinstance(final, Finished) and final.ok and final.message == "Checked; all done."
        assert final.resume_token == token
        assert (tmp_path / "wt/marker").read_text() == "ran\n"  # the call was not run again
        posts = [request for request in server.requests if request.method == "POST"]
        assert len(posts) == 2
        body = posts[1].body or {}
    index, results = interrupted_answer(body, backend)
    if backend == "anthropic":
        assert results == [
            {
                "type": "tool_result",
                "tool_use_id": CALL_ID,
                "content": INTERRUPTED,
                "is_error": True,
            }
        ]
    elif backend == "chat":
        assert results == [
            {"role": "tool", "tool_call_id": CALL_ID, "content": f"ERROR: {INTERRUPTED}"}
        ]
    else:
        assert results == [
            {"type": "function_call_output", "call_id": CALL_ID, "output": f"ERROR: {INTERRUPTED}"}
        ]
    items = body["input"] if backend == "responses" else body["messages"]
    assert "Go on." in json.dumps(items[index:])  # the new prompt comes after the answer


@pytest.mark.parametrize("backend", BACKENDS)
async def test_only_the_calls_left_without_a_result_are_answered_as_interrupted(
    tmp_path: Path, backend: str
) -> None:
    """A reply with two calls, killed during the second: the first keeps its real result."""
    with FakeModelServer([Say("Resumed.")]) as server:
        config = api_config(server, backend)
        agent = build_agent(AgentConfig(**config))
        assert isinstance(agent, ModelAgent)
        task = make_task(tmp_path, "Do two things.")
        model = agent.backend(task, KEY)
        done = Call("call_done", "list_files", {}, "{}")
        running = Call("call_running", "run_command", {"command": "make"}, '{"command": "make"}')
        messages = model.start(task.prompt)
        model.add_reply(messages, Reply("Two calls.", (done, running)))
        model.add_results(messages, [(done, "a.txt", False)])  # as saved before `running` ran
        await model.close()
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        token = f"conversation-{config['name']}.json"
        (scratch / token).write_text(json.dumps({"messages": messages}))

        events = await turn(config, make_task(tmp_path, "Go on.", resume_token=token))
        body = server.requests[0].body or {}

    assert [e for e in events if isinstance(e, ToolResult)] == [
        ToolResult("run_command", INTERRUPTED, is_error=True)
    ]
    assert isinstance(events[-1], Finished) and events[-1].ok
    items = body["input"] if backend == "responses" else body["messages"]
    if backend == "anthropic":  # one user message holds all of a reply's results
        answer = items[2]["content"]
        assert [(block["tool_use_id"], block["is_error"]) for block in answer] == [
            ("call_done", False),
            ("call_running", True),
        ]
        assert items[3] == {"role": "user", "content": "Go on."}
    elif backend == "chat":
        assert [(m["tool_call_id"], m["content"][:6]) for m in items[3:5]] == [
            ("call_done", "a.txt"),
            ("call_running", "ERROR:"),
        ]
    else:
        outputs = [item for item in items if item.get("type") == "function_call_output"]
        assert [(o["call_id"], o["output"][:6]) for o in outputs] == [
            ("call_done", "a.txt"),
            ("call_running", "ERROR:"),
        ]


# -- the CLI agents announce their session before the turn ends -------------------------------

CLAUDE_LINES: list[dict[str, Any]] = [
    {"type": "system", "subtype": "init", "session_id": SESSION, "model": "claude-sonnet-4-5"},
    {
        "type": "assistant",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "All done."}]},
        "session_id": SESSION,
    },
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "All done.",
        "session_id": SESSION,
        "total_cost_usd": 0.00067,
        "usage": {"input_tokens": 24, "output_tokens": 40},
    },
]
CODEX_LINES: list[dict[str, Any]] = [
    {"type": "thread.started", "thread_id": THREAD},
    {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message", "text": "Done."}},
    {"type": "turn.completed", "usage": {"input_tokens": 24, "output_tokens": 40}},
]


def paused_cli(tmp_path: Path, lines: list[dict[str, Any]]) -> tuple[str, Path]:
    """A stand-in CLI that prints its first line, then waits on a FIFO before the rest: the
    test lets it go on only once the session was announced, so a `Session` that came only at
    the end of the turn would never arrive."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    script = tmp_path / "fake-cli"
    first, rest = json.dumps(lines[0]), "\n".join(json.dumps(line) for line in lines[1:])
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "sys.stdin.read()\n"
        f"print({first!r}, flush=True)\n"
        f"open({str(fifo)!r}).read()\n"
        f"print({rest!r}, flush=True)\n"
    )
    script.chmod(0o755)
    return str(script), fifo


@pytest.mark.parametrize(("kind", "token"), [("claude-code", SESSION), ("codex", THREAD)])
async def test_a_cli_agent_announces_its_session_while_the_turn_runs(
    tmp_path: Path, kind: str, token: str
) -> None:
    lines = CLAUDE_LINES if kind == "claude-code" else CODEX_LINES
    binary, fifo = paused_cli(tmp_path, lines)
    agent = build_agent(AgentConfig(name=kind, kind=kind, binary=binary))
    worktree = tmp_path / "wt"
    worktree.mkdir()
    task = AgentTask("r1", 1, worktree, "Do it.", tmp_path / "scratch", dict(os.environ))
    events: list[AgentEvent] = []
    async with asyncio.timeout(30):
        async for event in agent.run(task):
            events.append(event)
            if isinstance(event, Session):  # the turn is still going: let it finish
                await asyncio.to_thread(fifo.write_text, "go\n")
    sessions = [event for event in events if isinstance(event, Session)]
    assert sessions == [Session(token)]  # once, though every line repeats it
    final = events[-1]
    assert isinstance(final, Finished) and final.ok and final.resume_token == token


# -- the runner stores the session at once ------------------------------------------------------


async def test_a_turn_cancelled_mid_way_leaves_the_session_stored(tmp_path: Path) -> None:
    with FakeModelServer([Fault("hang", seconds=30)]) as server:
        config = {
            "agents": {"model": {"kind": "anthropic", "base_url": server.url}},
            "loops": {
                "job": {
                    "prompt": "Create done.txt.",
                    "agent": "model",
                    "checks": [{"name": "done", "run": "test -f done.txt"}],
                }
            },
        }
        root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
        env = {**cli_env(), "ANTHROPIC_API_KEY": KEY}
        engine = await Engine.open(root, env, load_config(root / CONFIG_NAME))
        try:
            run = await engine.start_run("job")
            # the request is made after the Session event was handled, so it is stored by now
            assert await asyncio.to_thread(server.wait_for_requests, 1, 30.0)
            await engine.stop(run.id)
            final = await engine.store.run(run.id)
        finally:
            await engine.close()
    assert final.status is RunStatus.CANCELLED
    assert final.resume_token == "conversation-model.json"
