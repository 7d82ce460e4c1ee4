"""The prompt is evidence: what each iteration's agent received is what the store holds and
what `looptui log --prompts` prints, byte for byte, for the command agent (stdin, argument,
file) and for the API agents against the loopback fake model server (system prompt too)."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env, make_repo, run_cli
from fake_models import FakeModelServer, Recorded, Say, ToolUse

OPENAI_KEY = "sk-test-" + "o" * 32
ANTHROPIC_KEY = "sk-ant-test-" + "k" * 32
CHECK = {"name": "done", "run": "test -f done.txt || { echo 'done.txt is missing'; exit 1; }"}
HEADING = re.compile(r"^── iteration (\d+) · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: · (.+))? ──$")

# Writes exactly the bytes it was given to $RECEIVED/<iteration>; makes done.txt the 2nd time
AGENT = """\
import os, pathlib, sys
how = sys.argv[1]
if how == "stdin":
    given = sys.stdin.buffer.read()
elif how == "argument":
    given = os.fsencode(sys.argv[2])
else:
    given = pathlib.Path(sys.argv[2]).read_bytes()
iteration = os.environ["LOOPTUI_ITERATION"]
(pathlib.Path(os.environ["RECEIVED"]) / iteration).write_bytes(given)
if iteration == "2":
    pathlib.Path("done.txt").write_text("done\\n")
print("turn", iteration, "done")
"""


def printed_prompts(output: str) -> dict[tuple[int, str], str]:
    """`looptui log --prompts` read back: (iteration, "" or what the block is) → its text."""
    blocks: dict[tuple[int, str], str] = {}
    key: tuple[int, str] | None = None
    for line in output.splitlines(keepends=True):
        heading = HEADING.match(line.rstrip("\n"))
        if heading:
            key = (int(heading[1]), heading[2] or "")
            blocks[key] = ""
        else:
            assert key is not None, f"text before any heading: {line!r}"
            blocks[key] += line
    return blocks


def stored(repo: Path) -> list[tuple[int, str, str | None, int]]:
    with sqlite3.connect(repo / ".git/looptui/store.db") as db:
        return db.execute(
            "SELECT number, prompt, system_prompt, system_appended FROM iterations ORDER BY number"
        ).fetchall()


def only_run(repo: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    [run] = json.loads(run_cli(repo, "status", "--json", env=env).stdout)
    return run  # type: ignore[no-any-return]


@pytest.mark.parametrize("how", ["stdin", "argument", "file"])
def test_the_command_agent_receives_exactly_the_stored_prompt(tmp_path: Path, how: str) -> None:
    received = tmp_path / "received"
    received.mkdir()
    given = {"stdin": [], "argument": ["{prompt}"], "file": ["{prompt_file}"]}[how]
    config = {
        "agents": {
            "echo": {
                "kind": "command",
                "command": [sys.executable, "agent.py", how, *given],
                "env": {"RECEIVED": str(received)},
            }
        },
        "loops": {
            "finish": {
                "prompt": "Write done.txt.\n\nSay `done` — with a tab\there and ünïcode.",
                "agent": "echo",
                "checks": [CHECK],
                "max_iterations": 2,
            }
        },
    }
    repo = make_repo(tmp_path / "repo", {"agent.py": AGENT}, config)
    result = run_cli(repo, "run", "finish")
    assert result.code == 0, result.stdout + result.stderr
    run = only_run(repo)
    assert run["status"] == "succeeded" and run["iterations"] == 2

    rows = stored(repo)
    sent = {int(path.name): path.read_bytes() for path in received.iterdir()}
    assert sorted(sent) == [number for number, *_ in rows] == [1, 2]
    for number, prompt, system, _ in rows:
        assert prompt.encode() == sent[number]  # byte for byte
        assert system is None  # a command gets the prompt and nothing else of looptui's
    second = rows[1][1]
    # what the run learned is part of it: the earlier note and the failing check's output
    assert "## Notes from earlier iterations\n- iteration 1 (problem)" in second
    assert "## Failing checks" in second and "done.txt is missing" in second

    log = run_cli(repo, "log", run["id"][:6], "--prompts")
    assert log.code == 0, log.stderr
    # the prompts under their headings, and nothing else (no run line, no agent output)
    assert printed_prompts(log.stdout) == {
        (1, ""): sent[1].decode(),
        (2, ""): sent[2].decode(),
    }
    assert HEADING.match(log.stdout.splitlines()[0])


def agents(server: FakeModelServer) -> dict[str, dict[str, Any]]:
    return {
        "anthropic": {"kind": "anthropic", "model": "claude-test", "base_url": server.url},
        "openai-chat": {"kind": "openai", "api": "chat", "base_url": server.url + "/v1"},
        "openai-responses": {"kind": "openai", "api": "responses", "base_url": server.url + "/v1"},
    }


def given(request: Recorded) -> tuple[str, str] | None:
    """(system prompt, user prompt) of a request that gave the model a new prompt (its last
    message is the user's text, not tool results); None for a request that goes on a turn."""
    body = request.body or {}
    if request.protocol == "anthropic":
        system, messages = body["system"], body["messages"]
    elif request.protocol == "chat":
        messages = body["messages"]
        system = messages[0]["content"]
    else:
        system, messages = body["instructions"], body["input"]
    last = messages[-1]
    if last.get("role") == "user" and isinstance(last.get("content"), str):
        return system, last["content"]
    return None


@pytest.mark.parametrize("agent", ["anthropic", "openai-chat", "openai-responses"])
def test_the_model_receives_exactly_the_stored_prompt(tmp_path: Path, agent: str) -> None:
    with FakeModelServer() as server:
        config = {
            "agents": agents(server),
            "loops": {
                "finish": {
                    "prompt": "Write done.txt.",
                    "agent": agent,
                    "checks": [CHECK],
                    "max_iterations": 2,
                }
            },
        }
        repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
        server.add(
            Say("Not yet."),  # iteration 1 ends with the check failing
            ToolUse("write_file", {"path": "done.txt", "content": "done\n"}),
            Say("Wrote done.txt."),
        )
        home = tmp_path / "home"
        home.mkdir()
        env = {
            **cli_env(),
            "HOME": str(home),
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "OPENAI_API_KEY": OPENAI_KEY,
        }
        result = run_cli(repo, "run", "finish", env=env)
        assert result.code == 0, result.stdout + result.stderr
        sent = [prompt for prompt in map(given, server.requests) if prompt is not None]
    run = only_run(repo, env)
    assert run["status"] == "succeeded" and run["iterations"] == 2

    rows = stored(repo)
    assert len(sent) == len(rows) == 2  # one new prompt per iteration, the rest tool rounds
    for (system, prompt), (_, kept, kept_system, appended) in zip(sent, rows, strict=True):
        assert kept == prompt and kept_system == system and appended == 0
    assert "done.txt is missing" in sent[1][1]  # the failing check reached the model

    log = run_cli(repo, "log", run["id"], "--prompts", env=env)
    assert log.code == 0, log.stderr
    # the system prompt is printed once, before the first prompt: it did not change
    assert printed_prompts(log.stdout) == {
        (1, "system prompt"): sent[0][0] + "\n",
        (1, ""): sent[0][1],
        (2, ""): sent[1][1],
    }
    assert sent[0][0] == sent[1][0]


def test_the_system_text_is_printed_again_only_when_it_changes() -> None:
    import datetime as dt

    from looptui.console import prompts_text
    from looptui.engine.models import Iteration

    def when(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")

    iterations = [
        Iteration("r1", 1, 10.0, prompt="one", system_prompt="be brief", system_appended=True),
        Iteration("r1", 2, 20.0, prompt="two\n", system_prompt="be brief", system_appended=True),
        Iteration("r1", 3, 30.0, prompt="three\n", system_prompt="be kind"),
    ]
    assert prompts_text([]) == ""
    assert prompts_text(iterations) == (
        f"── iteration 1 · {when(10)} · system prompt (added to the agent's own) ──\n"
        "be brief\n"
        f"── iteration 1 · {when(10)} ──\n"
        "one\n"  # a prompt without its own last newline gets one
        f"── iteration 2 · {when(20)} ──\n"
        "two\n"
        f"── iteration 3 · {when(30)} · system prompt ──\n"
        "be kind\n"
        f"── iteration 3 · {when(30)} ──\n"
        "three\n"
    )
