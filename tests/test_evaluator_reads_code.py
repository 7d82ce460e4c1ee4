"""The evaluator reads the code it judges: it works read-only in a checkout of the commit that
would merge, with its own instructions, and its citations are checked against that checkout.

The API evaluators are the real Anthropic and OpenAI agents against the loopback fake model
server (its recorded requests show what the model was offered and what it read); the CLI
evaluators are real subprocesses standing in for `claude` and `codex`, recording their argv.
The checkout is a real `git worktree add --detach` of the fixed commit.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import git, make_repo
from fake_models import FakeModelServer, Recorded, Reply, Say, ToolUse
from looptui.engine.agents import build_agent
from looptui.engine.agents.model_loop import SYSTEM_PROMPT as CODING_PROMPT
from looptui.engine.config import AgentConfig
from looptui.engine.evaluation import Evidence
from looptui.engine.evaluator_agent import SYSTEM_PROMPT, AgentEvaluator, parse_verdict
from looptui.engine.models import CheckResult, DiffStat, Flag, Verdict

KEY = "sk-test-" + "e" * 32
BACKENDS = ["anthropic", "chat", "responses"]
FIXED_LINE = "    return width * height"
BUGGY = "def rectangle(width, height):\n    return width + height\n"
FIXED = "def rectangle(width, height):\n    # the area, not the perimeter\n" + FIXED_LINE + "\n"
READ_TOOLS = {"list_files", "read_file", "search", "git_diff", "git_log"}


@dataclass
class Change:
    repo: Path
    checkout: Path
    base: str
    commit: str


@pytest.fixture
def change(tmp_path: Path) -> Change:
    """A repository whose second commit fixes rectangle(), and a detached checkout of it."""
    repo = make_repo(tmp_path / "repo", {"shapes/area.py": BUGGY, "README.md": "shapes\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "shapes/area.py").write_text(FIXED)
    git(repo, "commit", "--quiet", "-am", "Multiply in rectangle()")
    commit = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "reset", "--quiet", "--hard", base)  # the checkout, not the repo, holds the fix
    checkout = tmp_path / "checkout"
    git(repo, "worktree", "add", "--quiet", "--detach", str(checkout), commit)
    return Change(repo, checkout, base, commit)


def evidence(change: Change | None, **fields: Any) -> Evidence:
    settings: dict[str, Any] = {
        "goal": "Make rectangle() return the area.",
        "iteration": 1,
        "agent_ok": True,
        "agent_message": "Fixed rectangle() by multiplying.",
        "checks": (CheckResult("tests", "pytest -q", 0, 0.1, "1 passed"),),
        "diff": DiffStat(1, 2, 1),
        "diff_text": f"-    return width + height\n+{FIXED_LINE}",
    }
    if change is not None:
        settings |= {
            "checkout": change.checkout,
            "commit": change.commit,
            "base_commit": change.base,
        }
    return Evidence(**(settings | fields))


def api_config(server: FakeModelServer, backend: str) -> AgentConfig:
    if backend == "anthropic":
        return AgentConfig(
            name="judge", kind="anthropic", base_url=server.url, api_key_env="K", max_retries=0
        )
    return AgentConfig(
        name="judge",
        kind="openai",
        api=backend,
        base_url=server.url + "/v1",
        api_key_env="K",
        max_retries=0,
    )


def evaluator(agent_config: AgentConfig, tmp_path: Path, **options: Any) -> AgentEvaluator:
    environ = {"K": KEY, "PATH": os.environ["PATH"]}
    agent = build_agent(agent_config)
    return AgentEvaluator(agent, workdir=tmp_path / "evaluator", environ=environ, **options)


def verdict_json(**fields: Any) -> str:
    verdict = {"done": True, "confidence": 0.9, "reasons": ["multiplies"]}
    verdict["citations"] = [{"path": "shapes/area.py", "line": 2}]  # a done verdict cites
    return json.dumps({**verdict, **fields})


def model_calls(server: FakeModelServer) -> list[Recorded]:
    return [request for request in server.requests if request.protocol]


def offered_tools(request: Recorded) -> set[str]:
    assert request.body is not None
    tools = request.body["tools"]
    if request.protocol == "chat":
        return {tool["function"]["name"] for tool in tools}
    return {tool["name"] for tool in tools}


def system_of(request: Recorded) -> str:
    body = request.body
    assert body is not None
    if request.protocol == "anthropic":
        return str(body["system"])
    if request.protocol == "responses":
        return str(body["instructions"])
    [system] = [m["content"] for m in body["messages"] if m.get("role") == "system"]
    return str(system)


def conversation(request: Recorded) -> str:
    body = request.body
    assert body is not None
    return json.dumps(body["input"] if request.protocol == "responses" else body["messages"])


# -- the API evaluators ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_it_reads_the_fixed_file_in_the_checkout_with_read_only_tools(
    tmp_path: Path, change: Change, backend: str
) -> None:
    citation = {"path": "shapes/area.py", "line": 3}
    script: list[Reply] = [
        ToolUse("read_file", {"path": "shapes/area.py"}),
        Say(verdict_json(citations=[citation])),
    ]
    with FakeModelServer(script) as server:
        verdict = await evaluator(api_config(server, backend), tmp_path).evaluate(evidence(change))
        first, second = model_calls(server)
    # what it read came from the checkout of the fixed commit (the repo itself is still buggy)
    assert FIXED_LINE.strip() in conversation(second)
    assert "width + height" in (change.repo / "shapes/area.py").read_text()
    assert offered_tools(first) == READ_TOOLS  # no write_file, edit_file, run_command
    assert system_of(first).startswith(SYSTEM_PROMPT)
    assert CODING_PROMPT not in system_of(first)
    assert "Your working directory is a checkout of commit " + change.commit in conversation(first)
    assert (verdict.done, verdict.flags) == (True, ())
    assert "cites shapes/area.py:3" in verdict.reasons
    assert git(change.checkout, "status", "--porcelain") == ""


async def test_git_diff_and_git_log_show_the_change_under_review(
    tmp_path: Path, change: Change
) -> None:
    script: list[Reply] = [
        ToolUse("git_diff", {"path": "shapes/area.py"}),
        ToolUse("git_log", {}),
        ToolUse("git_diff", {"path": "../repo"}),
        Say(verdict_json()),
    ]
    with FakeModelServer(script) as server:
        verdict = await evaluator(api_config(server, "anthropic"), tmp_path).evaluate(
            evidence(change)
        )
        _, after_diff, after_log, after_escape = model_calls(server)
    assert verdict.done
    diff = json.loads(conversation(after_diff))[-1]["content"][0]
    assert not diff["is_error"]
    assert "-    return width + height" in diff["content"]
    assert f"+{FIXED_LINE}" in diff["content"]
    log = json.loads(conversation(after_log))[-1]["content"][0]
    assert "Multiply in rectangle()" in log["content"] and change.commit in log["content"]
    assert "initial" not in log["content"]  # only base..commit
    escape = json.loads(conversation(after_escape))[-1]["content"][0]
    assert escape["is_error"] and "climbs out" in escape["content"]


async def test_a_write_tool_called_by_name_is_refused(tmp_path: Path, change: Change) -> None:
    script: list[Reply] = [
        ToolUse("write_file", {"path": "shapes/area.py", "content": "gone\n"}),
        ToolUse("run_command", {"command": "echo hacked > shapes/area.py"}),
        Say(verdict_json()),
    ]
    with FakeModelServer(script) as server:
        await evaluator(api_config(server, "anthropic"), tmp_path).evaluate(evidence(change))
        *_, last = model_calls(server)
    results = [
        block
        for message in json.loads(conversation(last))
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert [r["is_error"] for r in results] == [True, True]
    assert all("unknown tool" in r["content"] for r in results)
    assert (change.checkout / "shapes/area.py").read_text() == FIXED


async def test_commands_only_when_the_loop_allows_them(tmp_path: Path, change: Change) -> None:
    script: list[Reply] = [
        ToolUse("run_command", {"command": "grep -c 'width [*] height' shapes/area.py"}),
        Say(verdict_json()),
    ]
    with FakeModelServer(script) as server:
        judge = evaluator(api_config(server, "chat"), tmp_path, allow_commands=True)
        assert (await judge.evaluate(evidence(change))).done
        first, second = model_calls(server)
    assert offered_tools(first) == READ_TOOLS | {"run_command"}
    assert '"content": "1"' in conversation(second)  # the command ran in the checkout


async def test_without_a_checkout_it_is_told_so_and_gets_no_git_tools(tmp_path: Path) -> None:
    with FakeModelServer([Say(verdict_json())]) as server:
        verdict = await evaluator(api_config(server, "responses"), tmp_path).evaluate(
            evidence(None)
        )
        [request] = model_calls(server)
    assert verdict.done
    assert "No checkout is available" in conversation(request)
    assert offered_tools(request) == {"list_files", "read_file", "search"}


async def test_the_tamper_guards_flags_are_in_the_question(tmp_path: Path, change: Change) -> None:
    flag = Flag("test-removed", "tests/test_area.py", 4, "a test function was deleted")
    with FakeModelServer([Say(verdict_json(done=False))]) as server:
        await evaluator(api_config(server, "anthropic"), tmp_path).evaluate(
            evidence(change, flags=(flag,))
        )
        [request] = model_calls(server)
    question = conversation(request)
    assert json.dumps(str(flag))[1:-1] in question
    assert "a flagged iteration is never done" in question


async def test_a_citation_that_does_not_hold_flags_the_verdict(
    tmp_path: Path, change: Change
) -> None:
    citations = [
        {"path": "shapes/area.py", "line": 3},  # holds
        {"path": "shapes/missing.py", "line": 1},
        {"path": "shapes/area.py", "line": 4},  # the file has 3 lines
        {"path": "../repo/shapes/area.py", "line": 1},
    ]
    with FakeModelServer([Say(verdict_json(citations=citations))]) as server:
        verdict = await evaluator(api_config(server, "anthropic"), tmp_path).evaluate(
            evidence(change)
        )
    assert not verdict.done and verdict.outcome == "flagged"
    assert [(f.rule, f.path, f.line) for f in verdict.flags] == [
        ("bad-citation", "shapes/missing.py", 1),
        ("bad-citation", "shapes/area.py", 4),
        ("bad-citation", "../repo/shapes/area.py", 1),
    ]
    assert "does not exist" in verdict.flags[0].message
    assert "has 3 lines" in verdict.flags[1].message
    assert "outside the checkout" in verdict.flags[2].message
    assert "cites shapes/area.py:3" in verdict.reasons


def test_a_citation_through_a_symlink_out_is_bad(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "secret.txt").write_text("one\n")
    (checkout / "link.txt").symlink_to(tmp_path / "secret.txt")
    (checkout / "ok.txt").write_text("one\ntwo")  # no newline at the end: still two lines
    answer = verdict_json(
        citations=[
            {"path": "link.txt", "line": 1},
            {"path": "ok.txt", "line": 2},
            {"path": "ok.txt"},
        ]
    )
    verdict = parse_verdict(answer, "j", checkout)
    assert [(f.path, f.rule) for f in verdict.flags] == [("link.txt", "bad-citation")]
    assert verdict.reasons[-2:] == ("cites ok.txt:2", "cites ok.txt")
    assert not verdict.done


def test_citations_must_be_well_formed_and_a_done_verdict_needs_them(tmp_path: Path) -> None:
    assert parse_verdict(verdict_json(citations=[]), "j", None) == Verdict(
        done=True, evaluator="j", confidence=0.9, reasons=("multiplies",)
    )  # without a checkout nothing could be cited
    with pytest.raises(ValueError, match="must cite"):
        parse_verdict(verdict_json(citations=[]), "j", tmp_path)
    not_done = json.dumps({"done": False, "reasons": ["no"]})
    assert not parse_verdict(not_done, "j", tmp_path).done  # "not done" needs no citation
    for bad in (
        "src/x.py:1",
        [{"line": 1}],
        [{"path": "x", "line": "1"}],
        [{"path": "x", "line": True}],
    ):
        with pytest.raises(ValueError, match='"citations" must be'):
            parse_verdict(verdict_json(citations=bad), "j", None)


# -- the CLI evaluators ------------------------------------------------------------------------

FAKE_CLI = textwrap.dedent(
    """\
    import json, os, sys
    with open({record!r}, "w") as handle:
        json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd(), "stdin": sys.stdin.read()}}, handle)
    verdict = {verdict!r}
    if {codex!r}:
        lines = [
            {{"type": "thread.started", "thread_id": "01a20cde-2e22-7bd2-99cd-43f327255d4d"}},
            {{"type": "item.completed", "item": {{"id": "i1", "type": "agent_message",
                                                "text": verdict}}}},
            {{"type": "turn.completed", "usage": {{"input_tokens": 1, "output_tokens": 1}}}},
        ]
    else:
        lines = [{{"type": "result", "subtype": "success", "is_error": False, "result": verdict,
                   "session_id": "94dff97a-f2de-444c-bdda-df71f6f2388e", "usage": {{}}}}]
    for line in lines:
        print(json.dumps(line))
    """
)


def fake_cli(tmp_path: Path, name: str) -> tuple[str, Path]:
    """An executable standing in for `claude` or `codex` that answers a verdict and records
    its argv, working directory and stdin."""
    record = tmp_path / f"{name}-call.json"
    script = tmp_path / "bin" / name
    script.parent.mkdir(exist_ok=True)
    body = FAKE_CLI.format(
        record=str(record),
        verdict=verdict_json(citations=[{"path": "shapes/area.py", "line": 3}]),
        codex=name == "codex",
    )
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    return str(script), record


@pytest.mark.parametrize("commands", [False, True])
async def test_claude_code_judges_in_the_checkout_with_writes_denied(
    tmp_path: Path, change: Change, commands: bool
) -> None:
    binary, record = fake_cli(tmp_path, "claude")
    agent_config = AgentConfig(
        name="judge",
        kind="claude-code",
        binary=binary,
        permission_mode="bypassPermissions",  # the executor's settings do not carry over
        allowed_tools=("Write", "Bash(rm *)"),
    )
    judge = evaluator(agent_config, tmp_path, allow_commands=commands)
    verdict = await judge.evaluate(evidence(change))
    assert verdict.done and "cites shapes/area.py:3" in verdict.reasons
    call = json.loads(record.read_text())
    argv = call["argv"]
    assert Path(call["cwd"]) == change.checkout.resolve()
    assert "bypassPermissions" not in argv
    assert argv[argv.index("--permission-mode") + 1] == "dontAsk"
    denied = argv[argv.index("--disallowedTools") + 1].split(",")
    assert {"Write", "Edit", "MultiEdit", "NotebookEdit"} <= set(denied)
    assert ("Bash" in denied) is not commands
    allowed = argv[argv.index("--allowedTools") + 1].split(",")
    assert ("Bash" in allowed) is commands
    assert argv[argv.index("--system-prompt") + 1] == SYSTEM_PROMPT
    assert "Your working directory is a checkout" in call["stdin"]


async def test_codex_judges_in_the_checkout_in_the_read_only_sandbox(
    tmp_path: Path, change: Change
) -> None:
    binary, record = fake_cli(tmp_path, "codex")
    agent_config = AgentConfig(name="judge", kind="codex", binary=binary)  # workspace-write
    verdict = await evaluator(agent_config, tmp_path).evaluate(evidence(change))
    assert verdict.done
    call = json.loads(record.read_text())
    argv = call["argv"]
    assert 'sandbox_mode="read-only"' in argv
    assert not any("workspace-write" in part for part in argv)
    assert argv[argv.index("-C") + 1] == str(change.checkout)
    [instructions] = [part for part in argv if part.startswith("developer_instructions=")]
    assert "independent evaluator" in instructions


# -- the real Claude Code CLI as the evaluator, against the fake model server ----------------


async def test_the_real_claude_code_reads_the_fix_and_may_not_write(
    tmp_path: Path, change: Change
) -> None:
    """The model asks the real `claude` to read the changed file, then to write one: the read
    returns the fixed line, the write is refused, and the checkout is left as it was."""
    from cli_tools import require_cli

    binary = require_cli("claude")
    home = tmp_path / "home"
    home.mkdir()
    target = change.checkout / "shapes/area.py"
    planted = change.checkout / "planted.txt"
    verdict = verdict_json(citations=[{"path": "shapes/area.py", "line": 3}])
    script = [
        ToolUse("Read", {"file_path": str(target)}),
        ToolUse("Write", {"file_path": str(planted), "content": "the evaluator was here\n"}),
        Say(verdict),
    ]
    with FakeModelServer(script) as server:
        environ = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": "sk-ant-test-" + "r" * 24,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        agent_config = AgentConfig(name="judge", kind="claude-code", binary=binary)
        judge = AgentEvaluator(
            build_agent(agent_config), workdir=tmp_path / "evaluator", environ=environ
        )
        result = await judge.evaluate(evidence(change))
        bodies = [json.dumps(request.body) for request in model_calls(server)]
    assert result.done and "cites shapes/area.py:3" in result.reasons, result
    assert len(bodies) == 3
    assert "width * height" in bodies[1]  # the Read's result reached the model
    assert not planted.exists()  # the Write was refused
    assert "tool_result" in bodies[2] and "is_error" in bodies[2]
    assert git(change.checkout, "status", "--porcelain") == ""
