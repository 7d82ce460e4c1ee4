"""The Codex agent: its JSONL stream parsed through the real subprocess path (a small script
stands in for `codex`), its command line, its failures (turn.failed, a crash, garbage, a
cancel) ending the turn cleanly, and the real Codex CLI working in a git worktree against
the fake model server, then resuming its thread."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import textwrap
import time
import tomllib
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
from looptui.engine.agents.codex import CodexAgent, toml_string
from looptui.engine.config import AgentConfig
from looptui.engine.errors import AgentUnavailable

THREAD = "01a20cde-2e22-7bd2-99cd-43f327255d4d"
PROMPT = 'fix it; rm -rf / `x` $(y) "quoted"'
KEY_VARIABLE = "GATEWAY_KEY"
KEY = "sk-gateway-" + "g" * 24
STDIN_NOTICE = "Reading additional input from stdin..."
# The lines of a real run of Codex 0.169.0 (agent-formats.md §4.2), copied as they are.
REAL_LINES = [
    '{"type":"thread.started","thread_id":"01a20cde-2e22-7bd2-99cd-43f327255d4d"}',
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata '
    "for `gpt-fake` not found. Defaulting to fallback metadata; this can degrade performance "
    'and cause issues."}}',
    '{"type":"turn.started"}',
    '{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":'
    '"/bin/bash -lc \'echo hello-from-fake\'","aggregated_output":"","exit_code":null,'
    '"status":"in_progress"}}',
    '{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":'
    '"/bin/bash -lc \'echo hello-from-fake\'","aggregated_output":"hello-from-fake\\n",'
    '"exit_code":0,"status":"completed"}}',
    '{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"All done."}}',
]
TURN_COMPLETED = (
    '{"type":"turn.completed","usage":{"input_tokens":24,"cached_input_tokens":0,'
    '"cache_write_input_tokens":0,"output_tokens":40,"reasoning_output_tokens":0}}'
)
# Items of the kinds the real run did not show, in the shapes of §4.2.
MORE_ITEMS: list[dict[str, Any]] = [
    {
        "type": "item.completed",
        "item": {
            "id": "item_3",
            "type": "file_change",
            "changes": [{"path": "a.py", "kind": "update"}, {"path": "b.py", "kind": "add"}],
            "status": "completed",
        },
    },
    {
        "type": "item.started",
        "item": {
            "id": "item_4",
            "type": "mcp_tool_call",
            "server": "docs",
            "tool": "search",
            "arguments": {"q": "asyncio"},
            "status": "in_progress",
        },
    },
    {
        "type": "item.completed",
        "item": {
            "id": "item_4",
            "type": "mcp_tool_call",
            "server": "docs",
            "tool": "search",
            "arguments": {"q": "asyncio"},
            "result": {"content": [{"type": "text", "text": "found it"}]},
            "error": None,
            "status": "completed",
        },
    },
    {
        "type": "item.completed",
        "item": {
            "id": "item_5",
            "type": "command_execution",
            "command": "false",
            "aggregated_output": "",
            "exit_code": 1,
            "status": "failed",
        },
    },
    {"type": "error", "message": "Reconnecting... 2/5"},
    {"type": "item.completed", "item": {"id": "item_6", "type": "reasoning", "text": "hmm"}},
    {"type": "mystery.event", "payload": [1, 2]},
]


def fake_codex(tmp_path: Path, lines: list[Any], exit_code: int = 0, tail: str = "") -> str:
    """An executable standing in for `codex`: it records its argv, stdin and environment,
    prints Codex's stdin notice on stderr and `lines` on stdout, runs `tail`, and exits."""
    script = tmp_path / "fake-codex"
    printed = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    record = {"call": str(tmp_path / "call.json")}
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""\
            import json, os, pathlib, subprocess, sys, time
            pathlib.Path({record["call"]!r}).write_text(json.dumps({{
                "argv": sys.argv[1:],
                "stdin": sys.stdin.read(),
                "cwd": os.getcwd(),
                "env": dict(os.environ),
            }}))
            print({STDIN_NOTICE!r}, file=sys.stderr, flush=True)
            print({printed!r}, flush=True)
            """
        )
        + textwrap.dedent(tail)
        + f"\nsys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return str(script)


def make_task(
    tmp_path: Path,
    resume: str | None = None,
    environ: dict[str, str] | None = None,
    system: str = "",
) -> AgentTask:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    return AgentTask(
        "r1",
        1,
        worktree,
        PROMPT,
        tmp_path / "scratch",
        environ if environ is not None else dict(os.environ),
        system=system,
        resume_token=resume,
    )


def codex(binary: str, **options: Any) -> AgentConfig:
    return AgentConfig(name="codex", kind="codex", binary=binary, **options)


async def turn(config: AgentConfig, task: AgentTask) -> list[AgentEvent]:
    return [event async for event in CodexAgent(config).run(task)]


def call_of(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "call.json").read_text()))


def overrides(argv: list[str]) -> dict[str, Any]:
    """The `-c key=value` options of `argv`, each value parsed as TOML (as Codex does)."""
    found = {}
    for flag, option in itertools.pairwise(argv):
        if flag == "-c":
            key, _, value = option.partition("=")
            found[key] = tomllib.loads(f"value = {value}")["value"]
    return found


def without_stderr(events: list[AgentEvent]) -> list[AgentEvent]:
    return [e for e in events if not (isinstance(e, OutputLine) and e.stream == "stderr")]


# -- the stream and the command line, through a stand-in script ------------------------------


async def test_a_real_codex_stream_becomes_looptuis_events(tmp_path: Path) -> None:
    lines = [*REAL_LINES, "garbage: not an event", *MORE_ITEMS, TURN_COMPLETED]
    config = codex(
        fake_codex(tmp_path, lines),
        model="gpt-x",
        sandbox="read-only",
        base_url="http://127.0.0.1:9/v1",
        api_key_env=KEY_VARIABLE,
        env={"EXTRA_SETTING": "from-config"},
    )
    task = make_task(tmp_path, environ={**os.environ, KEY_VARIABLE: KEY})
    events = await turn(config, task)

    command = "/bin/bash -lc 'echo hello-from-fake'"
    assert without_stderr(events) == [
        Session(THREAD),
        OutputLine(
            "[codex: Model metadata for `gpt-fake` not found. Defaulting to fallback metadata; "
            "this can degrade performance and cause issues.]",
            NOTE_STREAM,
        ),
        ToolCall("shell", {"command": command}),
        ToolResult("shell", "hello-from-fake\n", False),
        Text("All done."),
        OutputLine("garbage: not an event"),  # shown, never fatal
        ToolCall("file_change", {"paths": ["a.py", "b.py"]}),
        ToolResult("file_change", "update a.py\nadd b.py", False),
        ToolCall("mcp:docs/search", {"q": "asyncio"}),
        ToolResult("mcp:docs/search", "found it", False),
        ToolCall("shell", {"command": "false"}),  # only its completion came: still called once
        ToolResult("shell", "", True),
        OutputLine("[codex: Reconnecting... 2/5]", NOTE_STREAM),
        Usage(24, 40),
        Finished(ok=True, message="All done.", exit_code=0, resume_token=THREAD),
    ]
    assert OutputLine(STDIN_NOTICE, "stderr") in events
    assert KEY not in repr(events)

    call = call_of(tmp_path)
    argv = call["argv"]
    assert argv[:3] == ["exec", "--json", "--skip-git-repo-check"]
    assert argv[-3:] == ["-C", str(task.worktree), "-"]
    assert argv[argv.index("-m") + 1] == "gpt-x"
    assert overrides(argv) == {
        "sandbox_mode": "read-only",
        "model_provider": "looptui",
        "model_providers.looptui.name": "looptui",
        "model_providers.looptui.base_url": "http://127.0.0.1:9/v1",
        "model_providers.looptui.wire_api": "responses",
        "model_providers.looptui.env_key": KEY_VARIABLE,
    }
    assert not any(KEY in part for part in argv)  # the key stays in the environment
    assert call["env"][KEY_VARIABLE] == KEY and call["env"]["EXTRA_SETTING"] == "from-config"
    assert call["env"]["LOOPTUI_WORKTREE"] == str(task.worktree)
    assert call["stdin"] == PROMPT  # on stdin, never in argv
    assert call["cwd"] == str(task.worktree)


async def test_without_base_url_codex_uses_its_own_provider(tmp_path: Path) -> None:
    await turn(codex(fake_codex(tmp_path, [*REAL_LINES, TURN_COMPLETED])), make_task(tmp_path))
    argv = call_of(tmp_path)["argv"]
    assert overrides(argv) == {"sandbox_mode": "workspace-write"}
    assert "-m" not in argv


async def test_a_resumed_turn_continues_the_thread(tmp_path: Path) -> None:
    config = codex(fake_codex(tmp_path, [*REAL_LINES, TURN_COMPLETED]), sandbox="read-only")
    events = await turn(config, make_task(tmp_path, resume=THREAD, system="Be brief. ✓ 😀"))
    assert events[0] == SystemPrompt("Be brief. ✓ 😀", appended=True)  # stored before it runs
    argv = call_of(tmp_path)["argv"]
    # `codex exec resume` takes neither -s nor -C: the sandbox is an override, the
    # working root the process's own directory (the worktree)
    assert argv[:2] == ["exec", "resume"] and argv[-2:] == [THREAD, "-"]
    assert "-C" not in argv and "-s" not in argv
    assert overrides(argv) == {
        "sandbox_mode": "read-only",
        "developer_instructions": "Be brief. ✓ 😀",
    }
    assert call_of(tmp_path)["stdin"] == PROMPT
    assert events[-1] == Finished(ok=True, message="All done.", exit_code=0, resume_token=THREAD)


async def test_a_resume_token_that_could_be_an_option_is_never_passed(tmp_path: Path) -> None:
    token = "--dangerously-bypass-approvals-and-sandbox"
    config = codex(fake_codex(tmp_path, [*REAL_LINES, TURN_COMPLETED]))
    events = await turn(config, make_task(tmp_path, resume=token))
    argv = call_of(tmp_path)["argv"]
    assert token not in argv and "resume" not in argv  # a new thread instead
    final = events[-1]
    assert isinstance(final, Finished) and final.ok and final.resume_token == THREAD


@pytest.mark.parametrize(
    "value",
    ["plain", 'say "hi"', "back\\slash", "line\nbreak\ttab\r", "del\x7f bell\x07", "é ✓ 😀", ""],
)
def test_override_values_are_toml_strings(value: str) -> None:
    assert tomllib.loads(f"value = {toml_string(value)}")["value"] == value


async def test_turn_failed_fails_the_turn_and_keeps_the_thread(tmp_path: Path) -> None:
    lines = [
        REAL_LINES[0],
        '{"type":"turn.started"}',
        '{"type":"error","message":"Reconnecting... 1/5"}',
        '{"type":"turn.failed","error":{"message":"stream disconnected before completion"}}',
    ]
    events = await turn(codex(fake_codex(tmp_path, lines, exit_code=1)), make_task(tmp_path))
    message = "codex: stream disconnected before completion"
    assert without_stderr(events) == [
        Session(THREAD),
        OutputLine("[codex: Reconnecting... 1/5]", NOTE_STREAM),  # a notice, not the end
        AgentError(message),
        Finished(ok=False, message=message, exit_code=1, resume_token=THREAD),
    ]


async def test_a_turn_completed_with_a_failing_exit_status_is_not_ok(tmp_path: Path) -> None:
    binary = fake_codex(tmp_path, [*REAL_LINES, TURN_COMPLETED], exit_code=2)
    events = await turn(codex(binary), make_task(tmp_path))
    assert AgentError(f"{binary} exited with status 2") in events
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and final.exit_code == 2


async def test_a_crash_after_the_thread_started_fails_cleanly(tmp_path: Path) -> None:
    tail = 'print("thread panicked at codex-rs/core", file=sys.stderr, flush=True)'
    binary = fake_codex(tmp_path, [REAL_LINES[0], '{"type":"turn.started"}'], 3, tail)
    events = await turn(codex(binary), make_task(tmp_path))
    message = (
        f"{binary} ended before its turn did (exit status 3): thread panicked at codex-rs/core"
    )
    assert without_stderr(events) == [
        Session(THREAD),
        AgentError(message),
        Finished(ok=False, message=message, exit_code=3, resume_token=THREAD),
    ]


async def test_garbage_only_fails_cleanly(tmp_path: Path) -> None:
    garbage = ["\x00\x01 binary noise", "{broken json", "[1, 2]", '"a string"']
    events = await turn(codex(fake_codex(tmp_path, garbage)), make_task(tmp_path))
    assert [e for e in without_stderr(events) if isinstance(e, OutputLine)] == [
        OutputLine(line) for line in garbage
    ]
    assert isinstance(events[-2], AgentError)
    final = events[-1]
    assert isinstance(final, Finished) and not final.ok and final.resume_token is None
    assert final.exit_code == 0 and STDIN_NOTICE in final.message  # its last stderr line


def _gone(pid: int) -> bool:
    """No such process, or only its zombie is left (killed, not yet reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_cancel_kills_codex_and_everything_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    tail = f"""\
        child = subprocess.Popen(["sleep", "60"])
        pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        print("ready", flush=True)
        time.sleep(60)
        """
    agent = CodexAgent(codex(fake_codex(tmp_path, [REAL_LINES[0]], tail=tail)))
    seen: list[AgentEvent] = []
    ready = asyncio.Event()

    async def consume() -> None:
        async for event in agent.run(make_task(tmp_path)):
            seen.append(event)
            if event == OutputLine("ready"):
                ready.set()

    going = asyncio.create_task(consume())
    await asyncio.wait_for(ready.wait(), 10)
    going.cancel()
    with pytest.raises(asyncio.CancelledError):
        await going
    leader, child = (int(pid) for pid in pids.read_text().split())
    deadline = time.monotonic() + 5
    # no event fires when a grandchild dies: its SIGKILL was sent, its end is polled
    while not (_gone(leader) and _gone(child)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert _gone(leader) and _gone(child)
    assert not any(isinstance(event, Finished) for event in seen)


def test_preflight_names_a_missing_binary_and_how_to_install_it(tmp_path: Path) -> None:
    agent = CodexAgent(codex("codex-not-installed-here"))
    with pytest.raises(AgentUnavailable) as raised:
        agent.preflight({"PATH": str(tmp_path)}, tmp_path)
    message = str(raised.value)
    assert "codex-not-installed-here" in message and "npm install -g @openai/codex" in message
    assert "\n" not in message
    CodexAgent(codex(fake_codex(tmp_path, []))).preflight({"PATH": ""}, tmp_path)


# -- the real Codex CLI, against the fake model server ---------------------------------------


async def test_the_real_codex_works_in_a_worktree_and_resumes_its_thread(tmp_path: Path) -> None:
    binary = require_cli("codex")
    repo = make_repo(tmp_path / "repo", {"README.md": "a project\n"})
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "--quiet", "-b", "looptui/r1", str(worktree))
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        KEY_VARIABLE: KEY,
    }
    with FakeModelServer() as server:
        # Codex 0.169 offers the model `exec_command` (agent-formats.md §4.3). Its default
        # sandbox, workspace-write, runs commands in this container, so the test uses it.
        server.add(ToolUse("exec_command", {"cmd": "printf 'hello' > note.txt"}), Say("done"))
        config = codex(
            binary, model="gpt-test", base_url=server.url + "/v1", api_key_env=KEY_VARIABLE
        )
        first_task = AgentTask("r1", 1, worktree, PROMPT, tmp_path / "scratch", environ)
        first = await turn(config, first_task)

        assert (worktree / "note.txt").read_text() == "hello"
        calls = [event for event in first if isinstance(event, ToolCall)]
        assert len(calls) == 1 and calls[0].name == "shell"
        assert "printf 'hello' > note.txt" in calls[0].input["command"]
        assert ToolResult("shell", "", False) in first
        assert Text("done") in first
        assert Usage(24, 40) in first  # two model replies of 12 + 20 tokens
        final = first[-1]
        assert isinstance(final, Finished) and final.ok, first
        assert final.message == "done" and final.exit_code == 0
        thread = final.resume_token
        assert thread and list((codex_home / "sessions").rglob(f"rollout-*{thread}.jsonl"))
        assert KEY not in repr(first)
        first_requests = [r for r in server.requests if r.method == "POST"]
        assert len(first_requests) == 2
        for request in first_requests:
            assert request.path == "/v1/responses"
            assert request.headers.get("authorization") == f"Bearer {KEY}"
            assert request.body is not None and request.body["model"] == "gpt-test"
        offered = first_requests[0].body
        assert offered is not None
        assert "exec_command" in [tool.get("name") for tool in offered["tools"]]

        # The next turn resumes the thread: the model sees the first prompt again, and its
        # command may write, which proves the sandbox reaches a resumed thread too (without
        # `sandbox_mode`, Codex 0.169 resumes read-only, and the write is refused).
        server.add(ToolUse("exec_command", {"cmd": "printf 'again' > second.txt"}), Say("ok"))
        second_task = AgentTask(
            "r1",
            2,
            worktree,
            "Now write second.txt.",
            tmp_path / "scratch",
            environ,
            resume_token=thread,
        )
        second = await turn(config, second_task)
        assert second[-1] == Finished(ok=True, message="ok", exit_code=0, resume_token=thread)
        assert (worktree / "second.txt").read_text() == "again"
        resumed = [r for r in server.requests if r.method == "POST"][len(first_requests)]
        sent = json.dumps(resumed.body)
        assert PROMPT.replace('"', '\\"') in sent and "Now write second.txt." in sent
        assert resumed.headers.get("authorization") == f"Bearer {KEY}"
