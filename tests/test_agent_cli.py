"""The Claude Code and Codex agents: their streams parsed through the real subprocess path,
their failures (crash, hang, garbage) ending the turn cleanly, and the real CLIs resuming a
session against the fake model server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cli_tools import require_cli
from conftest import git
from fake_models import FakeModelServer, Say, ToolUse
from looptui.engine.agents import (
    AgentError,
    AgentTask,
    Finished,
    OutputLine,
    Text,
    ToolCall,
    ToolResult,
    Usage,
    build_agent,
)
from looptui.engine.agents.base import AgentEvent
from looptui.engine.config import AgentConfig

SESSION = "94dff97a-f2de-444c-bdda-df71f6f2388e"
THREAD = "01a20cde-2e22-7bd2-99cd-43f327255d4d"
# Lines of real runs (agent-formats.md §1.4 and §4.2), shortened to the fields that matter.
CLAUDE_LINES = [
    {"type": "system", "subtype": "init", "session_id": SESSION, "model": "claude-x"},
    {"type": "system", "subtype": "status", "status": "requesting", "session_id": SESSION},
    {
        "type": "assistant",
        "message": {"content": [{"type": "text", "text": "Running a command."}]},
        "session_id": SESSION,
    },
    {
        "type": "assistant",
        "message": {
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
            ]
        },
        "session_id": SESSION,
    },
    {
        "type": "user",
        "message": {
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "a.py",
                    "is_error": False,
                }
            ]
        },
    },
    {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}},
    {"type": "brand_new_event", "whatever": [1, 2]},
]
CLAUDE_RESULT = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "All done.",
    "session_id": SESSION,
    "total_cost_usd": 0.000672,
    "usage": {"input_tokens": 24, "cache_read_input_tokens": 6, "output_tokens": 40},
}
CODEX_LINES = [
    {"type": "thread.started", "thread_id": THREAD},
    {"type": "item.completed", "item": {"id": "item_0", "type": "error", "message": "metadata"}},
    {"type": "turn.started"},
    {
        "type": "item.started",
        "item": {
            "id": "item_1",
            "type": "command_execution",
            "command": "echo hi",
            "status": "in_progress",
        },
    },
    {
        "type": "item.completed",
        "item": {
            "id": "item_1",
            "type": "command_execution",
            "command": "echo hi",
            "aggregated_output": "hi\n",
            "exit_code": 0,
            "status": "completed",
        },
    },
    {
        "type": "item.completed",
        "item": {"id": "item_2", "type": "agent_message", "text": "All done."},
    },
    {"type": "mystery.event", "x": 1},
]
CODEX_DONE = {"type": "turn.completed", "usage": {"input_tokens": 24, "output_tokens": 40}}


def fake_cli(tmp_path: Path, lines: list[object], exit_code: int = 0, tail: str = "") -> str:
    """An executable that records its argv and stdin, prints `lines`, then runs `tail`."""
    script = tmp_path / "fake-cli"
    printed = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""\
            import json, pathlib, sys, time
            pathlib.Path({str(tmp_path / "call.json")!r}).write_text(
                json.dumps({{"argv": sys.argv[1:], "stdin": sys.stdin.read()}}))
            print({printed!r}, flush=True)
            """
        )
        + tail
        + f"\nsys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return str(script)


def task(
    tmp_path: Path, resume: str | None = None, environ: dict[str, str] | None = None
) -> AgentTask:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    return AgentTask(
        "r1",
        1,
        worktree,
        "fix it; rm -rf / `x` $(y)",
        tmp_path / "scratch",
        environ or dict(os.environ),
        resume_token=resume,
    )


async def turn(config: AgentConfig, agent_task: AgentTask) -> list[AgentEvent]:
    return [event async for event in build_agent(config).run(agent_task)]


def claude(binary: str, **options: Any) -> AgentConfig:
    return AgentConfig(name="claude", kind="claude-code", binary=binary, **options)


def codex(binary: str, **options: Any) -> AgentConfig:
    return AgentConfig(name="codex", kind="codex", binary=binary, **options)


def call_of(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "call.json").read_text()))


async def test_claude_code_stream_becomes_looptuis_events(tmp_path: Path) -> None:
    binary = fake_cli(tmp_path, [*CLAUDE_LINES, "not json at all", CLAUDE_RESULT])
    config = claude(
        binary,
        model="sonnet",
        permission_mode="acceptEdits",
        allowed_tools=("Read", "Bash(git diff *)"),
        max_turns=7,
        append_system_prompt="be brief",
        mcp_config=tmp_path / "mcp.json",
    )
    events = await turn(config, task(tmp_path, resume="earlier-session"))
    assert Text("Running a command.") in events
    assert ToolCall("Bash", {"command": "ls"}) in events
    assert ToolResult("Bash", "a.py", False) in events
    assert Usage(30, 40, 0.000672) in events
    assert OutputLine("not json at all") in events  # garbage is shown, not fatal
    assert events[-1] == Finished(ok=True, message="All done.", exit_code=0, resume_token=SESSION)
    call = call_of(tmp_path)
    assert call["stdin"] == "fix it; rm -rf / `x` $(y)"  # on stdin, never in argv
    assert call["argv"][:4] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert "--resume=earlier-session" in call["argv"]
    assert call["argv"][call["argv"].index("--allowedTools") + 1] == "Read,Bash(git diff *)"
    assert call["argv"][call["argv"].index("--max-turns") :][:2] == ["--max-turns", "7"]
    for flag, value in [
        ("--model", "sonnet"),
        ("--permission-mode", "acceptEdits"),
        ("--append-system-prompt", "be brief"),
        ("--mcp-config", str(tmp_path / "mcp.json")),
    ]:
        assert call["argv"][call["argv"].index(flag) + 1] == value


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({**CLAUDE_RESULT, "is_error": True, "result": "API Error: 500"}, "API Error: 500"),
        (
            {
                **CLAUDE_RESULT,
                "subtype": "error_max_turns",
                "errors": ["Reached maximum number of turns (1)"],
            },
            "Reached maximum number of turns",
        ),
    ],
)
async def test_claude_code_errors_in_the_result_fail_the_turn(
    tmp_path: Path, result: dict[str, Any], reason: str
) -> None:
    events = await turn(claude(fake_cli(tmp_path, [CLAUDE_LINES[0], result], 1)), task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and reason in final.message
    assert final.resume_token == SESSION


@pytest.mark.parametrize("kind", ["claude", "codex"])
async def test_a_cli_that_crashes_fails_its_turn_and_keeps_the_session(
    tmp_path: Path, kind: str
) -> None:
    first = CLAUDE_LINES[0] if kind == "claude" else CODEX_LINES[0]
    tail = 'print("segfault-ish", file=sys.stderr)'
    binary = fake_cli(tmp_path, [first], exit_code=3, tail=tail)
    config = claude(binary) if kind == "claude" else codex(binary)
    events = await turn(config, task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and final.exit_code == 3
    assert "exit status 3" in final.message and "segfault-ish" in final.message
    assert final.resume_token == (SESSION if kind == "claude" else THREAD)
    assert any(isinstance(event, AgentError) for event in events)


@pytest.mark.parametrize("kind", ["claude", "codex"])
async def test_a_cli_printing_only_garbage_fails_cleanly(tmp_path: Path, kind: str) -> None:
    binary = fake_cli(tmp_path, ["\x00\x01 garbage", "{broken json", "[1, 2]"])
    events = await turn(claude(binary) if kind == "claude" else codex(binary), task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and final.resume_token is None
    assert sum(isinstance(event, OutputLine) for event in events) >= 3


@pytest.mark.parametrize("kind", ["claude", "codex"])
async def test_a_hanging_cli_is_killed_with_its_children_on_cancel(
    tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "child-alive"
    tail = textwrap.dedent(
        f"""\
        import subprocess
        subprocess.Popen(["sh", "-c", "sleep 3; touch {marker}"])
        time.sleep(60)
        """
    )
    binary = fake_cli(
        tmp_path, [CLAUDE_LINES[0] if kind == "claude" else CODEX_LINES[0]], tail=tail
    )
    agent = build_agent(claude(binary) if kind == "claude" else codex(binary))

    async def consume() -> None:
        async for _ in agent.run(task(tmp_path)):
            pass

    going = asyncio.create_task(consume())
    await asyncio.sleep(1.0)
    going.cancel()
    with pytest.raises(asyncio.CancelledError):
        await going
    await asyncio.sleep(3.5)
    assert not marker.exists()


async def test_codex_stream_becomes_looptuis_events(tmp_path: Path) -> None:
    binary = fake_cli(tmp_path, [*CODEX_LINES, "garbage line", CODEX_DONE])
    config = codex(
        binary,
        model="gpt-x",
        sandbox="read-only",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="GATEWAY_KEY",
    )
    environ = {**os.environ, "GATEWAY_KEY": "sk-gateway-" + "g" * 24}
    events = await turn(config, task(tmp_path, environ=environ))
    assert ToolCall("shell", {"command": "echo hi"}) in events
    assert ToolResult("shell", "hi\n", False) in events
    assert Text("All done.") in events and Usage(24, 40) in events
    assert OutputLine("garbage line") in events
    assert events[-1] == Finished(ok=True, message="All done.", exit_code=0, resume_token=THREAD)
    call = call_of(tmp_path)
    argv = call["argv"]
    assert argv[0] == "exec" and argv[-1] == "-" and call["stdin"].startswith("fix it")
    assert 'sandbox_mode="read-only"' in argv and 'model_provider="looptui"' in argv
    assert 'model_providers.looptui.base_url="http://127.0.0.1:9/v1"' in argv
    assert 'model_providers.looptui.env_key="GATEWAY_KEY"' in argv
    assert not any("sk-gateway" in part for part in argv)  # the key stays in the environment


async def test_codex_turn_failed_fails_the_turn(tmp_path: Path) -> None:
    failed = {"type": "turn.failed", "error": {"message": "stream disconnected"}}
    events = await turn(codex(fake_cli(tmp_path, [CODEX_LINES[0], failed], 1)), task(tmp_path))
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and "stream disconnected" in final.message


async def test_codex_resumes_its_thread(tmp_path: Path) -> None:
    await turn(codex(fake_cli(tmp_path, [*CODEX_LINES, CODEX_DONE])), task(tmp_path, resume=THREAD))
    argv = call_of(tmp_path)["argv"]
    assert argv[:2] == ["exec", "resume"] and argv[-2:] == [THREAD, "-"]


# -- the real CLIs, against the fake model server ----------------------------------------------


def cli_environment(server: FakeModelServer, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / ".codex").mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "sk-ant-test-" + "c" * 30,
        "OPENAI_API_KEY": "sk-test-" + "x" * 30,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


@pytest.mark.parametrize("kind", ["claude", "codex"])
async def test_the_real_cli_resumes_its_session(tmp_path: Path, kind: str) -> None:
    binary = require_cli(kind)
    with FakeModelServer() as server:
        if kind == "claude":
            config = claude(
                binary, model="claude-test", permission_mode="acceptEdits", allowed_tools=("Bash",)
            )
            call = ToolUse("Bash", {"command": "printf 'hi\\n' > note.txt"})
        else:
            config = codex(
                binary, model="gpt-test", base_url=server.url + "/v1", sandbox="danger-full-access"
            )
            call = ToolUse("exec_command", {"cmd": "printf 'hi\\n' > note.txt"})
        server.add(call, Say("Wrote note.txt."), Say("It says hi."))
        environ = cli_environment(server, tmp_path / "home")
        first_task = task(tmp_path, environ=environ)
        git(first_task.worktree, "init", "--quiet")
        first = await turn(config, first_task)
        assert (first_task.worktree / "note.txt").read_text() == "hi\n"
        final = first[-1]
        assert isinstance(final, Finished) and final.ok, first
        assert final.resume_token
        assert any(isinstance(event, Usage) and event.output_tokens for event in first)
        second_task = AgentTask(
            "r1",
            2,
            first_task.worktree,
            "What does note.txt say?",
            tmp_path / "scratch",
            environ,
            resume_token=final.resume_token,
        )
        second = await turn(config, second_task)
        assert isinstance(second[-1], Finished) and second[-1].ok
        assert second[-1].message == "It says hi."
        assert second[-1].resume_token == final.resume_token  # the same session goes on
        model_calls = [r for r in server.requests if r.method == "POST"]
        resumed = json.dumps(model_calls[-1].body)
        assert "fix it; rm -rf" in resumed and "What does note.txt say?" in resumed
        auth = model_calls[0].headers
        assert auth.get("x-api-key") or auth.get("authorization", "").startswith("Bearer sk-")


async def test_a_long_event_line_is_still_an_event(tmp_path: Path) -> None:
    whole_file = "x = 1\n" * 40_000  # 240 kB: an Edit's result carries the whole file
    result = {
        "type": "user",
        "message": {
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": whole_file}]
        },
    }
    lines = [CLAUDE_LINES[0], CLAUDE_LINES[3], result, CLAUDE_RESULT]
    events = await turn(claude(fake_cli(tmp_path, lines)), task(tmp_path))
    assert ToolResult("Bash", whole_file, False) in events
    assert isinstance(events[-1], Finished) and events[-1].ok
