"""`looptui.toml` parsing into typed objects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from looptui.engine.config import (
    CheckConfig,
    ConfigError,
    load_config,
    parse_duration,
    write_starter_config,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("500ms", 0.5)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -1, True, "soon", "10 parsecs", "", None])
def test_invalid_durations(value: object) -> None:
    assert parse_duration(value) is None


def test_a_full_config_becomes_typed_objects(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/fix.md").write_text("Fix everything.\n")
    path = tmp_path / "looptui.toml"
    path.write_text(
        """
        [settings]
        max_parallel = 2
        [agents.a]
        kind = "command"
        command = ["agent", "{prompt}"]
        env = { MODE = "fast" }
        [agents.r]
        kind = "replay"
        script = "replays/r.jsonl"
        speed = 0
        [loops.fix]
        prompt_file = "prompts/fix.md"
        agent = "a"
        checks = ["pytest -q", { name = "lint", run = "ruff check", timeout = "2m" }]
        base = "develop"
        max_iterations = 7
        iteration_timeout = "5m"
        run_timeout = "1h"
        stall_after = 2
        """.replace("\n        ", "\n")
    )
    config = load_config(path)
    loop = config.loop("fix")
    assert config.max_parallel == 2
    assert loop.prompt == "Fix everything.\n"
    assert loop.checks == (
        CheckConfig("check1", "pytest -q", 600.0),
        CheckConfig("lint", "ruff check", 120.0),
    )
    assert (loop.base, loop.max_iterations, loop.stall_after) == ("develop", 7, 2)
    assert (loop.iteration_timeout, loop.run_timeout) == (300.0, 3600.0)
    assert config.agents["a"].command == ("agent", "{prompt}")
    assert config.agents["a"].env == {"MODE": "fast"}
    assert config.agents["r"].script == tmp_path / "replays/r.jsonl"


def test_model_agents_and_evaluators(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text(
        "[agents.claude]\nkind = 'claude-code'\nmodel = 'sonnet'\n"
        "permission_mode = 'acceptEdits'\nallowed_tools = ['Read', 'Edit']\nmax_turns = 9\n"
        "append_system_prompt = 'be brief'\nmcp_config = 'mcp.json'\n"
        "[agents.judge]\nkind = 'openai'\napi = 'responses'\nmodel = 'm'\n"
        "base_url = 'http://127.0.0.1:9/v1'\napi_key_env = 'JUDGE_KEY'\n"
        "request_timeout = '30s'\nmax_retries = 0\ninput_price = 3\noutput_price = 15\n"
        "[loops.fix]\nprompt = 'p'\nagent = 'claude'\nevaluator = 'judge'\n"
        "evaluator_failures = 3\nmax_tokens = 100000\nmax_cost_usd = 2.5\n"
    )
    config = load_config(path)
    claude, judge, loop = config.agents["claude"], config.agents["judge"], config.loops["fix"]
    assert claude.allowed_tools == ("Read", "Edit") and claude.mcp_config == tmp_path / "mcp.json"
    assert (claude.max_turns, claude.permission_mode) == (9, "acceptEdits")
    assert (judge.api, judge.base_url, judge.api_key_env) == (
        "responses",
        "http://127.0.0.1:9/v1",
        "JUDGE_KEY",
    )
    assert (judge.request_timeout, judge.max_retries, judge.output_price) == (30.0, 0, 15.0)
    assert (loop.evaluator, loop.evaluator_failures) == ("judge", 3)
    assert (loop.max_tokens, loop.max_cost_usd) == (100000, 2.5)


def test_the_starter_config_is_valid_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    write_starter_config(path)
    assert "fix" in load_config(path).loops
    path.write_text("# mine\n")
    with pytest.raises(ConfigError, match="already exists"):
        write_starter_config(path)
    assert path.read_text() == "# mine\n"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[loops.fix]\nprompt = 'x'\nagent = 'a'\n", "loops.fix.agent: expected the name of"),
        ("[agents.a]\nkind = 'telepathy'\n", "agents.a.kind: expected one of command, replay"),
        (
            "[agents.a]\nkind = 'command'\ncommand = ['x']\n"
            "[loops.x]\nprompt = 'p'\nagent = 'a'\nevaluator = 'judge'\n",
            "loops.x.evaluator: expected the name of an agent (a)",
        ),
        ("[agents.a]\nkind = 'openai'\napi = 'soap'\n", "agents.a.api: expected one of chat"),
        ("[agents.a]\nkind = 'codex'\nsandbox = 'none'\n", "agents.a.sandbox: expected one of"),
        ("[agents.a]\nkind = 'anthropic'\nbase_url = 'ftp://x'\n", "agents.a.base_url: expected"),
        ("[agents.a]\nkind = 'anthropic'\napi_key = 'sk-x'\n", "agents.a.api_key: unknown key"),
        ("[agents.a]\nkind = 'anthropic'\napi_key_env = 'A B'\n", "agents.a.api_key_env"),
        ("[agents.a]\nkind = 'claude-code'\nmax_turns = 0\n", "agents.a.max_turns: expected"),
        (
            "[agents.a]\nkind = 'openai'\n[loops.x]\nprompt = 'p'\nagent = 'a'\nmax_cost_usd = 1\n",
            "loops.x.max_cost_usd: agent 'a' reports no cost",
        ),
        ("[loops.'a b']\n", "loops.a b: expected a name"),
        ("[agents.a]\nkind = 'command'\ncommand = []\n", "agents.a.command: expected a non-empty"),
        ("x = = 1\n", ":1: invalid TOML"),
    ],
)
def test_errors_name_the_key_path(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [1e400, float("nan"), "31000000s", 30 * 24 * 3600 + 1])
def test_durations_past_30_days_or_not_finite_are_refused(value: object) -> None:
    assert parse_duration(value) is None


def test_an_overflowing_timeout_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text(
        '[agents.a]\nkind = "command"\ncommand = ["x"]\n'
        '[loops.l]\nprompt = "p"\nagent = "a"\niteration_timeout = 1e400\n'
    )
    with pytest.raises(ConfigError, match=r"loops\.l\.iteration_timeout: expected a positive"):
        load_config(path)


@pytest.mark.parametrize("where", ["../outside.md", "{outside}", "link.md", "sub/../../outside.md"])
def test_a_prompt_file_outside_the_repository_is_refused(tmp_path: Path, where: str) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    outside = tmp_path / "outside.md"
    outside.write_text("not for the agent's eyes\n")
    (root / "link.md").symlink_to(outside)
    (root / "sub").mkdir()
    path = root / "looptui.toml"
    prompt_file = where.format(outside=outside)
    path.write_text(
        '[agents.a]\nkind = "command"\ncommand = ["x"]\n'
        f'[loops.l]\nprompt_file = "{prompt_file}"\nagent = "a"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "loops.l.prompt_file: expected a file inside the repository" in message
    assert "\n" not in message


# -- files that are not files, and text that no argv can carry ------------------------------

MINIMAL = '[agents.a]\nkind = "command"\ncommand = ["true"]\n'


def loop_with(prompt_line: str) -> str:
    return f'{MINIMAL}[loops.l]\nagent = "a"\n{prompt_line}\n'


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_config_that_is_not_a_regular_file_is_refused_without_hanging(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "looptui.toml"
    if kind == "fifo":
        os.mkfifo(path)  # a plain read would wait for a writer forever
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")  # a plain read would fill memory
    expected = {"fifo": "a FIFO", "directory": "a directory", "device": "a character device"}
    with pytest.raises(ConfigError, match=f"not a regular file \\({expected[kind]}\\)"):
        load_config(path)


def test_a_prompt_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "prompt.md")
    path = tmp_path / "looptui.toml"
    path.write_text(loop_with('prompt_file = "prompt.md"'))
    with pytest.raises(ConfigError, match=r"loops\.l\.prompt_file: expected a regular file"):
        load_config(path)


@pytest.mark.parametrize("relative", [".git/looptui/store.db", ".git/config", "sub/../.git/HEAD"])
def test_a_prompt_file_inside_git_is_refused(tmp_path: Path, relative: str) -> None:
    (tmp_path / ".git" / "looptui").mkdir(parents=True)
    for name in ("looptui/store.db", "config", "HEAD"):
        (tmp_path / ".git" / name).write_text("[core]\n")
    (tmp_path / "sub").mkdir()
    path = tmp_path / "looptui.toml"
    path.write_text(loop_with(f'prompt_file = "{relative}"'))
    with pytest.raises(ConfigError, match=r"loops\.l\.prompt_file: expected a file outside \.git"):
        load_config(path)


def test_a_nul_in_a_prompt_is_refused_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text(loop_with('prompt = "a\\u0000b"'))
    with pytest.raises(ConfigError, match=r"loops\.l\.prompt: contains a NUL character"):
        load_config(path)


def test_a_nul_in_an_agents_argument_is_refused_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text('[agents.a]\nkind = "command"\ncommand = ["echo", "x\\u0000"]\n')
    with pytest.raises(ConfigError, match=r"agents\.a\.command\[1\]: contains a NUL character"):
        load_config(path)


def test_a_nul_in_a_prompt_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "prompt.md").write_bytes(b"fix\x00it\n")
    path = tmp_path / "looptui.toml"
    path.write_text(loop_with('prompt_file = "prompt.md"'))
    with pytest.raises(ConfigError, match="a text file without NUL characters"):
        load_config(path)
