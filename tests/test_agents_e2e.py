"""Each model backend, end to end through the real `looptui run`, against the fake model server.

The fake server (tests/fake_models.py) speaks the real wire protocols on 127.0.0.1 and
scripts the model's replies; everything else is real: the official SDKs, the Claude Code and
Codex CLIs, git worktrees, the checks, the store.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cli_tools import require_cli
from conftest import cli_env, git, make_repo, run_cli
from fake_models import FakeModelServer, Say, ToolUse

ANTHROPIC_KEY = "sk-ant-test-" + "k" * 32
OPENAI_KEY = "sk-test-" + "o" * 32
PLANTED = "planted-secret-" + "s" * 24  # in the environment as a secret; must never be stored
GREETING = "hello from the model"
CHECK = {"name": "greeted", "run": f"grep -q '{GREETING}' hello.txt"}


def model_env(server: FakeModelServer, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = cli_env()
    env.update(
        HOME=str(home),
        CODEX_HOME=str(home / ".codex"),
        ANTHROPIC_BASE_URL=server.url,
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        OPENAI_API_KEY=OPENAI_KEY,
        MY_SERVICE_TOKEN=PLANTED,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    (home / ".codex").mkdir(exist_ok=True)
    return env


def agents(server: FakeModelServer, tools: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        "anthropic": {"kind": "anthropic", "model": "claude-test", "base_url": server.url},
        "openai-chat": {"kind": "openai", "api": "chat", "base_url": server.url + "/v1"},
        "openai-responses": {
            "kind": "openai",
            "api": "responses",
            "base_url": server.url + "/v1",
            "model": "gpt-test",
        },
        "claude-code": {
            "kind": "claude-code",
            "binary": tools.get("claude", "claude"),
            "model": "claude-test",
            "permission_mode": "acceptEdits",
            "allowed_tools": ["Write", "Edit", "Read", "Bash"],
        },
        "codex": {
            "kind": "codex",
            "binary": tools.get("codex", "codex"),
            "model": "gpt-test",
            "base_url": server.url + "/v1",
            "api_key_env": "OPENAI_API_KEY",
            "sandbox": "danger-full-access",  # Codex's Linux sandbox cannot start in containers
        },
    }


def write_hello(kind: str) -> ToolUse:
    """The scripted model's call that writes hello.txt, in the backend's own tool."""
    if kind == "claude-code":  # its Write tool wants an absolute path; Bash runs in the worktree
        return ToolUse("Bash", {"command": f"printf '{GREETING}\\n' > hello.txt"})
    if kind == "codex":
        return ToolUse("exec_command", {"cmd": f"printf '{GREETING}\\n' > hello.txt"})
    return ToolUse("write_file", {"path": "hello.txt", "content": GREETING + "\n"})


def loop_repo(tmp_path: Path, server: FakeModelServer, agent: str, **loop: Any) -> Path:
    tools = {name: require_cli(name) for name in ("claude", "codex") if name in agent}
    config = {
        "agents": agents(server, tools),
        "loops": {
            "greet": {
                "prompt": "Write hello.txt with a greeting.",
                "agent": agent,
                "checks": [CHECK],
                "max_iterations": 2,
                "iteration_timeout": "2m",
                **loop,
            }
        },
    }
    return make_repo(tmp_path / "repo", {"README.md": "greetings\n"}, config)


@pytest.mark.parametrize(
    "agent", ["anthropic", "openai-chat", "openai-responses", "claude-code", "codex"]
)
def test_a_scripted_model_writes_the_file_the_check_wants(tmp_path: Path, agent: str) -> None:
    with FakeModelServer() as server:
        repo = loop_repo(tmp_path, server, agent)
        server.add(write_hello(agent), Say("Wrote hello.txt."))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        [run] = json.loads(run_cli(repo, "status", "--json").stdout)
        assert run["status"] == "succeeded" and run["iterations"] == 1
        assert (Path(run["worktree"]) / "hello.txt").read_text() == GREETING + "\n"
        assert run["usage"]["input_tokens"] > 0 and run["usage"]["output_tokens"] > 0
        assert server.requests, "the model was never asked"


def test_an_evaluator_on_another_backend_judges_the_executor(tmp_path: Path) -> None:
    with FakeModelServer() as server:
        repo = loop_repo(tmp_path, server, "anthropic", evaluator="openai-responses")
        verdict = {
            "done": True,
            "confidence": 0.75,
            "reasons": ["hello.txt greets"],
            "citations": [{"path": "hello.txt", "line": 1}],
        }
        server.add(write_hello("anthropic"), Say("Done, trust me."), Say(json.dumps(verdict)))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        protocols = [request.protocol for request in server.requests]
        assert protocols == ["anthropic", "anthropic", "responses"]
        judged = json.dumps(server.requests[-1].body)
        assert "+hello from the model" in judged  # the evaluator saw the diff
        [run] = json.loads(run_cli(repo, "status", "--json").stdout)
        assert run["last_verdict"]["evaluator"] == "openai-responses"
        assert run["last_verdict"]["confidence"] == 0.75


def test_an_evaluator_answering_garbage_pauses_the_run(tmp_path: Path) -> None:
    with FakeModelServer() as server:
        repo = loop_repo(
            tmp_path, server, "anthropic", evaluator="openai-chat", evaluator_failures=1
        )
        server.add(write_hello("anthropic"), Say("Done."), Say("LGTM!"), Say("Ship it."))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code != 0
        [run] = json.loads(run_cli(repo, "status", "--json").stdout)
        assert run["status"] == "paused" and run["last_verdict"]["outcome"] == "unknown"


def test_an_unreachable_evaluator_is_unknown_and_pauses_the_run(tmp_path: Path) -> None:
    with FakeModelServer() as server:
        repo = loop_repo(tmp_path, server, "anthropic", evaluator="nobody", evaluator_failures=1)
        config = (repo / "looptui.toml").read_text()
        judge = (
            '\n[agents.nobody]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
            "max_retries = 1\n"
        )
        (repo / "looptui.toml").write_text(config + judge)  # port 9: nothing listens
        git(repo, "commit", "--quiet", "-am", "an evaluator nobody answers for")
        server.add(write_hello("anthropic"), Say("Done."))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code != 0
        [run] = json.loads(run_cli(repo, "status", "--json").stdout)
        assert run["status"] == "paused"
        verdict = run["last_verdict"]
        assert verdict["outcome"] == "unknown" and not verdict["done"]
        assert "connection failed" in verdict["reasons"][0]


def test_secrets_in_the_environment_never_reach_the_store(tmp_path: Path) -> None:
    with FakeModelServer() as server:
        repo = loop_repo(tmp_path, server, "openai-chat")
        server.add(
            ToolUse("run_command", {"command": "env"}),
            write_hello("openai-chat"),
            Say(f"Done. By the way, the token is {PLANTED} and the key {OPENAI_KEY}."),
        )
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code == 0, result.stdout + result.stderr
        log = run_cli(repo, "log", json.loads(run_cli(repo, "status", "--json").stdout)[0]["id"])
        assert "run_command" in log.stdout  # the tool ran, and its output was stored
        data_dir = repo / ".git/looptui"
        for path in [p for p in data_dir.rglob("*") if p.is_file()]:
            content = path.read_bytes()
            for secret in (PLANTED, OPENAI_KEY, ANTHROPIC_KEY):
                assert secret.encode() not in content, f"{secret[:12]}… in {path}"
        with sqlite3.connect(data_dir / "store.db") as db:
            dump = "\n".join(db.iterdump())
        assert PLANTED not in dump and OPENAI_KEY not in dump
        for text in (log.stdout, log.stderr, result.stdout, result.stderr):
            assert PLANTED not in text and OPENAI_KEY not in text


@pytest.mark.parametrize(
    ("budget", "reason"),
    [({"max_tokens": 40}, "token budget spent"), ({"max_cost_usd": 0.0008}, "cost budget spent")],
)
def test_a_budget_stops_the_run(tmp_path: Path, budget: dict[str, Any], reason: str) -> None:
    with FakeModelServer() as server:
        repo = loop_repo(tmp_path, server, "anthropic", max_iterations=5, **budget)
        config = (repo / "looptui.toml").read_text()  # $10 and $20 per million: $0.00052 a reply
        priced = config.replace(
            'model = "claude-test"', 'model = "claude-test"\ninput_price = 10\noutput_price = 20', 1
        )
        (repo / "looptui.toml").write_text(priced)
        git(repo, "commit", "--quiet", "-am", "prices")
        server.add(ToolUse("list_files", {}), ToolUse("list_files", {}), Say("still looking"))
        result = run_cli(repo, "run", "greet", env=model_env(server, tmp_path / "home"))
        assert result.code != 0
        [run] = json.loads(run_cli(repo, "status", "--json").stdout)
        assert run["status"] == "failed" and reason in run["error"]
        assert len(server.requests) == 2  # stopped as soon as the second reply's usage came


async def test_the_conversation_goes_on_across_iterations_and_a_restart(tmp_path: Path) -> None:
    from looptui.engine import Engine, load_config

    with FakeModelServer() as server:
        repo = loop_repo(tmp_path, server, "openai-chat")
        server.add(
            ToolUse("write_file", {"path": "hello.txt", "content": "hullo\n"}),
            Say("First try."),
            write_hello("openai-chat"),
            Say("Fixed the greeting."),
        )
        env = model_env(server, tmp_path / "home")
        assert run_cli(repo, "run", "greet", env=env).code == 0
        [run] = json.loads(run_cli(repo, "status", "--json").stdout)
        assert run["iterations"] == 2
        second_iteration = json.dumps(server.requests[2].body)
        assert "hullo" in second_iteration  # iteration 1's tool call: the conversation goes on

        # a later looptui process continues the same conversation with the reviewer's words
        server.add(Say("Added a second line."))
        engine = await Engine.open(repo, env, load_config(repo / "looptui.toml"))
        try:
            await engine.feedback(run["id"], "Please also say goodbye.")
            await engine.wait(run["id"])
        finally:
            await engine.close()
        after_restart = json.dumps(server.requests[-1].body)
        assert "hullo" in after_restart and "Please also say goodbye." in after_restart
