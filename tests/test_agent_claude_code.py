"""The Claude Code agent: its stream-json parsed through the real subprocess path (a small
executable prints real lines), its command line and environment, its failures (a crash, a
kill, a hang cancelled, garbage) ending the turn cleanly, and the real `claude` CLI writing a
file in a git worktree and resuming its session against the loopback fake model server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cli_tools import require_cli
from conftest import git, make_repo
from fake_models import FakeModelServer, Say, ToolUse
from looptui.engine.agents.base import (
    NOTE_STREAM,
    AgentError,
    AgentEvent,
    AgentTask,
    Finished,
    OutputLine,
    Session,
    SystemPrompt,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from looptui.engine.agents.claude_code import ClaudeCodeAgent
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable
from process_support import wait_for_exit

SESSION = "94dff97a-f2de-444c-bdda-df71f6f2388e"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PROMPT = "Fix it; never run `rm -rf /` or $(whoami) > /dev/null"
TEST_KEY = "sk-ant-test-" + "abcdefghijklmnopqrstuvwx"

# The lines of a real run of Claude Code 2.1.330 against a fake server, unedited
# (/work/shared/reference/agent-formats.md §1.4): init, text, a Bash tool call, its result,
# the final text, and the result line.
REAL_LINES = [
    {
        "type": "system",
        "subtype": "init",
        "cwd": "/home/user/project",
        "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e",
        "tools": ["Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "..."],
        "mcp_servers": [],
        "model": "claude-sonnet-4-5",
        "permissionMode": "default",
        "slash_commands": [
            "deep-research",
            "dataviz",
            "update-config",
            "verify",
            "debug",
            "code-review",
            "...",
        ],
        "terminal_slash_commands": ["doctor", "color", "focus", "reload-plugins"],
        "apiKeySource": "ANTHROPIC_API_KEY",
        "claude_code_version": "2.1.330",
        "output_style": "default",
        "agents": ["claude", "Explore", "general-purpose", "Plan", "statusline-setup"],
        "skills": [
            "deep-research",
            "dataviz",
            "update-config",
            "verify",
            "debug",
            "code-review",
            "...",
        ],
        "plugins": [
            {
                "name": "cc-plugin-agents-md",
                "path": "builtin",
                "source": "cc-plugin-agents-md@builtin",
            },
            {"name": "cc-plugin-privacy", "path": "builtin", "source": "cc-plugin-privacy@builtin"},
            {
                "name": "cc-plugin-plugin-authoring",
                "path": "builtin",
                "source": "cc-plugin-plugin-authoring@builtin",
            },
        ],
        "capabilities": [
            "interrupt_receipt_v1",
            "interrupt_cancel_queued_v1",
            "interrupt_send_now_v1",
            "interrupt_requeue_taken_v1",
            "msg_lifecycle_v1",
            "request_marker_lists_v1",
            "...",
        ],
        "analytics_disabled": True,
        "product_feedback_disabled": True,
        "served_by_anthropic": False,
        "uuid": "d72b7fb4-cfa2-43f7-8e5e-e6ecfc3ef9d4",
        "memory_paths": {"auto": "/home/user/.claude/projects/-home-user-project/memory/"},
        "original_cwd": "/home/user/project",
        "additional_directories": [],
        "messaging_socket_path": "/tmp/cc-socks/<pid>.sock",
        "fast_mode_state": "off",
        "fast_mode_disabled_reason": "sdk_opt_in_required",
        "per_turn_effort_active": False,
        "ultrathink_available": False,
        "ultrathink_typed_raises": False,
        "view_mode": "default",
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_fake4338f80882d44ffd",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Running a command."}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
            "context_management": None,
        },
        "parent_tool_use_id": None,
        "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e",
        "uuid": "54d23f52-00b9-43af-bf99-31c2593af3a8",
        "timestamp": "2026-11-24T09:22:20.875Z",
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_fake4338f80882d44ffd",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01FAKE00597120",
                    "name": "Bash",
                    "input": {"command": "echo hello-from-fake", "description": "Print a greeting"},
                }
            ],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
            "context_management": None,
        },
        "parent_tool_use_id": None,
        "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e",
        "uuid": "980083dd-c4af-4119-a37e-5cd5967a362b",
        "timestamp": "2026-11-24T09:22:20.878Z",
    },
    {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {
                    "tool_use_id": "toolu_01FAKE00597120",
                    "type": "tool_result",
                    "content": "hello-from-fake",
                    "is_error": False,
                }
            ],
        },
        "parent_tool_use_id": None,
        "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e",
        "uuid": "c0fc0bc6-4a75-4e6c-86fb-025c9dd2046d",
        "timestamp": "2026-11-24T09:22:20.939Z",
        "tool_use_result": {
            "stdout": "hello-from-fake",
            "stderr": "",
            "interrupted": False,
            "isImage": False,
            "noOutputExpected": False,
        },
        "tool_result_meta": [
            {
                "id": "toolu_01FAKE00597120",
                "permission_decision": {
                    "decision": "accept",
                    "source": "config",
                    "reason_type": "rule",
                },
            }
        ],
    },
    {
        "type": "assistant",
        "message": {
            "id": "msg_fakef6d763276cbf4b90",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "All done."}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
            "context_management": None,
        },
        "parent_tool_use_id": None,
        "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e",
        "uuid": "7d4d1773-fc15-4bc4-bd38-4f3ef2f0dde2",
        "timestamp": "2026-11-24T09:22:20.965Z",
    },
    {
        "duration_api_ms": 64,
        "stop_reason": "end_turn",
        "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e",
        "total_cost_usd": 0.0006720000000000001,
        "usage": {
            "input_tokens": 24,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 40,
            "output_tokens_details": {"thinking_tokens": 0},
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
            "inference_geo": "",
            "iterations": [],
            "speed": "standard",
            "fallback_credit": None,
        },
        "modelUsage": {
            "claude-sonnet-4-5": {
                "inputTokens": 24,
                "outputTokens": 40,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": 0.0006720000000000001,
                "contextWindow": 200000,
                "maxOutputTokens": 32000,
                "thinkingTokens": 0,
                "cacheCreationEphemeral5mInputTokens": 0,
                "cacheCreationEphemeral1hInputTokens": 0,
                "canonicalModel": "claude-sonnet-4-5",
                "provider": "firstParty",
                "costBasis": "list",
            }
        },
        "permission_denials": [],
        "terminal_reason": "completed",
        "fast_mode_state": "off",
        "fast_mode_disabled_reason": "sdk_opt_in_required",
        "safety_stops": 0,
        "is_error": False,
        "num_turns": 2,
        "subtype": "success",
        "api_error_status": None,
        "result": "All done.",
        "ttft_ms": 122,
        "type": "result",
        "duration_ms": 219,
        "uuid": "f4a52d42-1279-4034-a2ae-e09d0c6c55ce",
        "ttft_stream_ms": 122,
        "time_to_request_ms": 108,
        "first_content_frame_ms": 122,
        "queued_turn_count": 0,
        "result_index": 0,
    },
]
INIT, RESULT = REAL_LINES[0], REAL_LINES[-1]


def fake_claude(
    tmp_path: Path,
    stdout: Sequence[object],
    exit_code: int = 0,
    stderr: Sequence[str] = (),
    then: str = "",
) -> str:
    """An executable standing in for `claude`: it records its argv, stdin, working directory
    and environment in `call.json`, prints `stdout` (dicts as JSON lines, strings as they
    are) and `stderr`, runs the Python code `then`, and exits with `exit_code`."""
    script = tmp_path / "bin" / "fake-claude"
    script.parent.mkdir(exist_ok=True)
    printed = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in stdout)
    body = textwrap.dedent(
        f"""\
        import json, os, pathlib, signal, subprocess, sys, time
        pathlib.Path({str(tmp_path / "call.json")!r}).write_text(json.dumps({{
            "argv": sys.argv[1:],
            "stdin": sys.stdin.read(),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }}))
        print({printed!r}, flush=True)
        for line in {list(stderr)!r}:
            print(line, file=sys.stderr, flush=True)
        """
    )
    script.write_text(f"#!{sys.executable}\n{body}{then}\nsys.exit({exit_code})\n")
    script.chmod(0o755)
    return str(script)


def config(binary: str, **options: Any) -> AgentConfig:
    return AgentConfig(name="claude", kind="claude-code", binary=binary, **options)


def task(
    tmp_path: Path,
    environ: Mapping[str, str] | None = None,
    resume: str | None = None,
    prompt: str = PROMPT,
    worktree: Path | None = None,
) -> AgentTask:
    if worktree is None:
        worktree = tmp_path / "worktree"
        worktree.mkdir(exist_ok=True)
    return AgentTask(
        run_id="r1",
        iteration=1,
        worktree=worktree,
        prompt=prompt,
        scratch_dir=tmp_path / "scratch",
        environ=dict(os.environ) if environ is None else environ,
        resume_token=resume,
    )


async def turn(agent_config: AgentConfig, agent_task: AgentTask) -> list[AgentEvent]:
    return [event async for event in ClaudeCodeAgent(agent_config).run(agent_task)]


def call_of(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "call.json").read_text()))


def finished(events: list[AgentEvent]) -> Finished:
    """The turn's last event, which must be its only `Finished`."""
    assert isinstance(events[-1], Finished), events
    assert sum(isinstance(event, Finished) for event in events) == 1, events
    return events[-1]


# -- the stream, parsed through the real subprocess path ---------------------------------------


async def test_real_stream_json_lines_become_events(tmp_path: Path) -> None:
    unknown = {"type": "brand_new_event", "session_id": SESSION, "payload": [1, {"x": 2}]}
    status = {"type": "system", "subtype": "status", "status": "requesting"}
    lines = [*REAL_LINES[:4], "this is not json {", unknown, status, *REAL_LINES[4:]]
    events = await turn(config(fake_claude(tmp_path, lines)), task(tmp_path))

    assert [event for event in events if not isinstance(event, OutputLine)] == [
        Session(SESSION),  # announced at once, so that a kill mid-turn can resume it
        Text("Running a command."),
        ToolCall("Bash", {"command": "echo hello-from-fake", "description": "Print a greeting"}),
        ToolResult("Bash", "hello-from-fake", is_error=False),
        Text("All done."),
        Usage(input_tokens=24, output_tokens=40, cost_usd=0.0006720000000000001),
        Finished(ok=True, message="All done.", exit_code=0, resume_token=SESSION),
    ]
    shown = [event for event in events if isinstance(event, OutputLine)]
    # The session is announced as soon as init arrives; the garbage line is shown as it came;
    # the unknown event and the status line show nothing.
    assert shown[0].stream == NOTE_STREAM and SESSION in shown[0].text
    assert shown[1:] == [OutputLine("this is not json {", "stdout")]


async def test_tool_result_blocks_cached_usage_retries_and_stderr(tmp_path: Path) -> None:
    read_call = {
        "type": "assistant",
        "message": {
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "abc"},
                {"type": "tool_use", "id": "toolu_read", "name": "Read", "input": {"x": 1}},
            ]
        },
    }
    read_result = {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_read",
                    "content": [
                        {"type": "text", "text": "line one"},
                        {"type": "image", "source": {"type": "base64", "data": "iVBO"}},
                        {"type": "text", "text": "line two"},
                    ],
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "toolu_unseen", "content": "orphan"},
            ],
        },
    }
    retry = {
        "type": "system",
        "subtype": "api_retry",
        "attempt": 1,
        "max_retries": 10,
        "retry_delay_ms": 500,
        "error_status": 529,
        "error": "overloaded",
        "session_id": SESSION,
    }
    cached = {
        "input_tokens": 5,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens": 7,
    }
    result = {**RESULT, "usage": cached, "total_cost_usd": 0.01}
    lines = [INIT, retry, read_call, read_result, result]
    binary = fake_claude(tmp_path, lines, stderr=["warning: slow disk"])
    events = await turn(config(binary), task(tmp_path))

    assert ToolCall("Read", {"x": 1}) in events
    assert ToolResult("Read", "line one\n[image]\nline two", is_error=True) in events
    assert ToolResult("tool", "orphan", is_error=False) in events  # an id never seen: no name
    assert not any(isinstance(event, Text) for event in events)  # thinking is not text
    notes = [e.text for e in events if isinstance(e, OutputLine) and e.stream == NOTE_STREAM]
    assert any("529" in note and "retry 1 of 10" in note for note in notes), notes
    assert OutputLine("warning: slow disk", "stderr") in events
    assert Usage(5 + 100 + 20, 7, 0.01) in events  # cached input is input too
    assert finished(events).ok


@pytest.mark.parametrize(
    ("result", "exit_code", "reason"),
    [
        # An API failure reported under subtype "success": is_error wins.
        (
            {**RESULT, "is_error": True, "result": "API Error: 500 internal error"},
            0,
            "API Error: 500 internal error",
        ),
        (
            {
                **RESULT,
                "subtype": "error_max_turns",
                "is_error": True,
                "errors": ["Reached maximum number of turns (1)"],
                "terminal_reason": "max_turns",
            },
            1,
            "Reached maximum number of turns (1)",
        ),
        (
            {
                **RESULT,
                "subtype": "error_during_execution",
                "is_error": True,
                "errors": ["tool crashed", "then gave up"],
            },
            1,
            "tool crashed; then gave up",
        ),
    ],
    ids=["success-but-is_error", "error_max_turns", "error_during_execution"],
)
async def test_a_failed_result_fails_the_turn(
    tmp_path: Path, result: dict[str, Any], exit_code: int, reason: str
) -> None:
    binary = fake_claude(tmp_path, [INIT, REAL_LINES[1], result], exit_code)
    events = await turn(config(binary), task(tmp_path))
    end = finished(events)
    assert end == Finished(ok=False, message=reason, exit_code=exit_code, resume_token=SESSION)
    assert any(isinstance(e, AgentError) and reason in e.message for e in events)
    assert Usage(24, 40, 0.0006720000000000001) in events  # what was spent still counts


async def test_a_successful_result_with_a_failing_exit_status_fails(tmp_path: Path) -> None:
    events = await turn(config(fake_claude(tmp_path, [INIT, RESULT], 2)), task(tmp_path))
    end = finished(events)
    assert not end.ok and end.exit_code == 2 and end.resume_token == SESSION
    assert any(isinstance(e, AgentError) and "status 2" in e.message for e in events)


# -- the command line and the environment ------------------------------------------------------


async def test_argv_stdin_cwd_and_environment(tmp_path: Path) -> None:
    binary = fake_claude(tmp_path, [INIT, RESULT])
    mcp = tmp_path / "mcp.json"
    mcp.write_text('{"mcpServers": {}}')
    agent_config = config(
        binary,
        model="claude-sonnet-4-5",
        permission_mode="acceptEdits",
        allowed_tools=("Read", "Edit", "Bash(git diff *)"),
        max_turns=7,
        append_system_prompt="-be brief",
        mcp_config=mcp,
        env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/gateway", "FROM_CONFIG": "yes"},
    )
    environ = {
        "PATH": os.environ["PATH"],
        "CLAUDECODE": "1",  # looptui itself launched from inside Claude Code
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:8/overridden",
        "ANTHROPIC_API_KEY": TEST_KEY,
    }
    agent_task = task(tmp_path, environ, resume="-starts-with-a-dash")
    events = await turn(agent_config, agent_task)
    assert finished(events).ok
    # said first, so that the run stores it before the process starts
    assert events[0] == SystemPrompt("-be brief", appended=True)

    call = call_of(tmp_path)
    assert call["argv"] == [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "claude-sonnet-4-5",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Read,Edit,Bash(git diff *)",
        "--max-turns",
        "7",
        "--append-system-prompt",
        "-be brief",
        "--mcp-config",
        str(mcp),
        "--resume=-starts-with-a-dash",  # the = form: a dash-leading id is not a flag
    ]
    assert call["stdin"] == PROMPT  # on stdin, never in argv (no E2BIG, not in `ps`)
    assert Path(call["cwd"]) == agent_task.worktree
    env = call["env"]
    assert "CLAUDECODE" not in env
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/gateway"  # config.env wins
    assert env["ANTHROPIC_API_KEY"] == TEST_KEY and env["FROM_CONFIG"] == "yes"
    assert "IS_SANDBOX" not in env  # looptui never unlocks bypass as root by itself
    assert not any(TEST_KEY in part for part in call["argv"])
    assert not any(TEST_KEY in repr(event) for event in events)


async def test_minimal_argv_and_a_traffic_setting_left_alone(tmp_path: Path) -> None:
    binary = fake_claude(tmp_path, [INIT, RESULT])
    environ = {"PATH": os.environ["PATH"], "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"}
    events = await turn(config(binary), task(tmp_path, environ))
    assert finished(events).ok
    assert not any(isinstance(event, SystemPrompt) for event in events)  # Claude Code's own
    call = call_of(tmp_path)
    assert call["argv"] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert call["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "0"


def test_preflight_finds_the_binary_or_says_how_to_install_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_claude(tmp_path, [RESULT])
    (bin_dir / "fake-claude").rename(bin_dir / "claude")
    default = ClaudeCodeAgent(AgentConfig(name="cc", kind="claude-code"))
    default.preflight({"PATH": str(bin_dir)}, tmp_path)  # `claude` on PATH

    with pytest.raises(AgentUnavailable) as missing:
        default.preflight({"PATH": str(tmp_path / "empty")}, tmp_path)
    message = str(missing.value)
    assert "'cc'" in message and "claude" in message and "\n" not in message
    assert "npm install -g @anthropic-ai/claude-code" in message

    absent = ClaudeCodeAgent(config(str(tmp_path / "nowhere" / "claude")))
    with pytest.raises(AgentUnavailable, match="nowhere/claude"):
        absent.preflight({"PATH": str(bin_dir)}, tmp_path)


def test_preflight_requires_the_mcp_config_to_exist(tmp_path: Path) -> None:
    binary = fake_claude(tmp_path, [RESULT])
    with pytest.raises(AgentUnavailable, match="mcp_config"):
        ClaudeCodeAgent(config(binary, mcp_config=tmp_path / "absent.json")).preflight(
            os.environ, tmp_path
        )
    (tmp_path / "mcp.json").write_text("{}")
    ClaudeCodeAgent(config(binary, mcp_config=tmp_path / "mcp.json")).preflight(
        os.environ, tmp_path
    )
    # A relative path is the repository's (preflight's cwd), as the config resolves it.
    ClaudeCodeAgent(config(binary, mcp_config=Path("mcp.json"))).preflight(os.environ, tmp_path)


async def test_a_binary_gone_since_preflight_cannot_start(tmp_path: Path) -> None:
    events = await turn(config(str(tmp_path / "vanished")), task(tmp_path))
    assert isinstance(events[0], AgentError) and "vanished" in events[0].message
    end = finished(events)
    assert not end.ok and end.cannot_start


# -- failures end the turn cleanly -------------------------------------------------------------


async def test_a_crash_after_init_fails_the_turn_and_keeps_the_session(tmp_path: Path) -> None:
    stderr = ["Error: something broke", "    at main (cli.js:1:1)"]
    binary = fake_claude(tmp_path, [INIT], exit_code=3, stderr=stderr)
    events = await turn(config(binary), task(tmp_path))
    end = finished(events)
    assert not end.ok and end.exit_code == 3
    assert end.resume_token == SESSION  # the next turn can still resume what was done
    errors = [event.message for event in events if isinstance(event, AgentError)]
    assert len(errors) == 1 and "exit status 3" in errors[0]
    assert "at main (cli.js:1:1)" in errors[0]  # the last stderr line says why
    assert OutputLine("Error: something broke", "stderr") in events


async def test_a_killed_resumed_turn_keeps_the_session_it_resumed(tmp_path: Path) -> None:
    then = "os.kill(os.getpid(), signal.SIGKILL)"
    binary = fake_claude(tmp_path, [REAL_LINES[1]], then=then)
    events = await turn(config(binary), task(tmp_path, resume=SESSION))
    end = finished(events)
    assert not end.ok and end.exit_code == -9 and end.resume_token == SESSION
    assert Text("Running a command.") in events


async def test_garbage_only_fails_cleanly_with_a_reason(tmp_path: Path) -> None:
    garbage = ["\x01\x02 binary junk", "{broken json", "[1, 2]", "42", '"a string"']
    events = await turn(config(fake_claude(tmp_path, garbage)), task(tmp_path))
    assert [e for e in events if isinstance(e, OutputLine)] == [OutputLine(g) for g in garbage]
    end = finished(events)
    assert not end.ok and end.exit_code == 0 and end.resume_token is None
    assert "without a result" in end.message
    assert any(isinstance(e, AgentError) and "without a result" in e.message for e in events)


def _gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie waiting for a reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
async def test_a_hang_is_cancelled_and_its_process_group_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The stand-in starts a grandchild that ignores SIGTERM, then hangs without a result.
    then = textwrap.dedent(
        f"""\
        child = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300"])
        pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        print({json.dumps(REAL_LINES[1])!r}, flush=True)
        time.sleep(300)
        """
    )
    binary = fake_claude(tmp_path, [INIT], then=then)
    started = asyncio.Event()
    seen: list[AgentEvent] = []

    async def consume() -> None:
        async for event in ClaudeCodeAgent(config(binary)).run(task(tmp_path)):
            seen.append(event)
            if isinstance(event, Text):  # printed after the grandchild was started
                started.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 20)
    leader, grandchild = map(int, pids.read_text().split())
    assert not _gone(leader) and not _gone(grandchild)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(consumer, 10)
    # Cancelling waited for the leader to be reaped; the grandchild, which ignores SIGTERM,
    # was killed with the group.
    assert _gone(leader)
    assert await wait_for_exit(grandchild, 5.0)  # a SIGKILL is delivered, not awaited
    assert not any(isinstance(event, Finished) for event in seen)


# -- the real Claude Code CLI against the fake model server ------------------------------------


def claude_cli() -> str:
    """The real `claude`, where `.ci/run` installs it (or $LOOPTUI_NPM_BIN, or PATH)."""
    return require_cli("claude")


def model_requests(server: FakeModelServer) -> list[Any]:
    return [request for request in server.requests if request.protocol == "anthropic"]


async def test_the_real_cli_writes_a_file_and_resumes_its_session(tmp_path: Path) -> None:
    binary = claude_cli()
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n"})
    worktree = tmp_path / "worktree"
    git(repo, "worktree", "add", "--quiet", "-b", "looptui/r1", str(worktree))
    target = worktree / "notes" / "greeting.txt"
    content = "hello from the fake model\nsecond line\n"
    agent_config = config(
        binary,
        model="claude-sonnet-4-5",
        permission_mode="acceptEdits",  # bypassPermissions is refused as root
        allowed_tools=("Write", "Edit", "Read", "Bash"),
    )
    home = tmp_path / "home"  # no user settings, and the session is stored here
    home.mkdir()
    with FakeModelServer(
        [ToolUse("Write", {"file_path": str(target), "content": content}), Say("done")]
    ) as server:
        environ = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": TEST_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        first = await turn(agent_config, task(tmp_path, environ, worktree=worktree))

        assert target.read_text() == content
        end = finished(first)
        assert end.ok and end.message == "done" and end.exit_code == 0, first
        assert end.resume_token is not None and UUID.match(end.resume_token)
        assert ToolCall("Write", {"file_path": str(target), "content": content}) in first
        assert any(
            isinstance(e, ToolResult) and e.name == "Write" and not e.is_error for e in first
        )
        requests = model_requests(server)
        assert len(requests) == 2  # the tool call, then the answer after its result
        usage = [event for event in first if isinstance(event, Usage)]
        assert len(usage) == 1
        assert (usage[0].input_tokens, usage[0].output_tokens) == (12 * 2, 20 * 2)
        assert usage[0].cost_usd > 0
        assert all(request.headers.get("x-api-key") == TEST_KEY for request in requests)
        assert PROMPT in json.dumps(requests[0].body["messages"])  # it came through stdin
        assert not any(TEST_KEY in repr(event) for event in first)

        server.add(Say("Still done."))
        second_task = AgentTask(
            run_id="r1",
            iteration=2,
            worktree=worktree,
            prompt="Is the greeting there?",
            scratch_dir=tmp_path / "scratch",
            environ=environ,
            resume_token=end.resume_token,
        )
        second = await turn(agent_config, second_task)

        again = finished(second)
        assert again.ok and again.message == "Still done.", second
        assert again.resume_token == end.resume_token  # the same session goes on
        resumed = model_requests(server)[2:]
        assert len(resumed) == 1
        conversation = json.dumps(resumed[0].body["messages"])
        assert PROMPT in conversation  # the first turn's prompt, carried over
        assert "Is the greeting there?" in conversation
        assert "tool_result" in conversation  # and the Write it made
