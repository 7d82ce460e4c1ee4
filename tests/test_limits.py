"""The reset times of usage and rate limits, read from each provider's own words."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import sys
from pathlib import Path

import pytest

from looptui.engine.agents import AgentTask, build_agent
from looptui.engine.agents.claude_code import StreamState
from looptui.engine.agents.claude_code import parse_event as claude_event
from looptui.engine.agents.codex import CodexState
from looptui.engine.agents.codex import parse_event as codex_event
from looptui.engine.agents.limits import (
    claude_limit_text,
    codex_limit_text,
    epoch,
    go_duration,
    reset_from_headers,
    rfc3339,
    seconds_after,
)
from looptui.engine.config import AgentConfig
from looptui.engine.errors import UsageLimited

NOW = 1_780_000_000.0  # a fixed "now", in epoch seconds


def local(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return dt.datetime(year, month, day, hour, minute).astimezone().timestamp()


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert seconds_after("30", NOW) == 30.0
    assert seconds_after(email.utils.formatdate(NOW + 90, usegmt=True), NOW) == 90.0
    assert seconds_after(email.utils.formatdate(NOW - 90, usegmt=True), NOW) == 0.0
    assert seconds_after("soon", NOW) is None and seconds_after("", NOW) is None
    assert seconds_after("nan", NOW) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m30s", 90.0), ("20ms", 0.02), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("45s", 45.0)],
)
def test_openai_reset_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1m30", "90", "1x", "m30s"])
def test_what_is_no_duration_is_none(text: str) -> None:
    assert go_duration(text) is None


def test_rfc3339_times() -> None:
    assert rfc3339("2026-05-28T20:26:40Z") == NOW
    assert rfc3339("2026-05-28T22:26:40+02:00") == NOW
    assert rfc3339("tomorrow") is None and rfc3339(None) is None


def test_a_429s_headers_give_its_reset() -> None:
    assert reset_from_headers({"Retry-After": "120"}, NOW) == NOW + 120
    assert reset_from_headers({"retry-after-ms": "1500"}, NOW) == NOW + 1.5
    openai = {
        "x-ratelimit-remaining-requests": "10",
        "x-ratelimit-reset-requests": "20ms",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1m30s",
    }
    assert reset_from_headers(openai, NOW) == NOW + 90  # the spent bucket's reset
    anthropic = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-05-28T20:27:40Z",
        "anthropic-ratelimit-tokens-remaining": "5000",
        "anthropic-ratelimit-tokens-reset": "2026-05-28T20:36:40Z",
    }
    assert reset_from_headers(anthropic, NOW) == NOW + 60
    # retry-after is the provider's own answer and wins
    assert reset_from_headers({**anthropic, "retry-after": "5"}, NOW) == NOW + 5
    assert reset_from_headers({"content-type": "application/json"}, NOW) is None


def test_claude_codes_limit_signals() -> None:
    assert claude_limit_text("Claude AI usage limit reached|1780003600") == 1780003600.0
    assert claude_limit_text("Claude AI usage limit reached") is None
    assert epoch(1780003600) == 1780003600.0 and epoch(1780003600000) == 1780003600.0
    assert epoch("1780003600") == 1780003600.0 and epoch(True) is None and epoch(None) is None

    state = StreamState()
    event = {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed_warning"}}
    list(claude_event({**event, "rate_limit_info": {"status": "allowed", "resetsAt": 1}}, state))
    assert state.limit_resets_at is None  # a warning is not a refusal
    info = {"status": "rejected", "resetsAt": 1780003600, "rateLimitType": "five_hour"}
    list(claude_event({"type": "rate_limit_event", "rate_limit_info": info}, state))
    assert state.limit_resets_at == 1780003600.0

    state = StreamState()
    assistant = {
        "type": "assistant",
        "error": "rate_limit",
        "message": {
            "content": [{"type": "text", "text": "Claude AI usage limit reached|1780007200"}]
        },
    }
    list(claude_event(assistant, state))
    assert state.limit_resets_at == 1780007200.0

    state = StreamState()
    result = {"type": "result", "subtype": "success", "is_error": True}
    list(claude_event({**result, "result": "Claude AI usage limit reached|1780010800"}, state))
    assert state.limit_resets_at == 1780010800.0


def test_codexs_usage_limit_messages() -> None:
    said = "You've hit your usage limit. Upgrade to Pro or try again in 3 days 6 hours 57 minutes."
    assert codex_limit_text(said, NOW) == NOW + 3 * 86400 + 6 * 3600 + 57 * 60
    assert codex_limit_text("You've hit your usage limit, try again in 45 minutes", NOW) == (
        NOW + 2700
    )
    # a clock time is local, and one already past today is tomorrow's
    today = dt.datetime.fromtimestamp(NOW)
    at = "You've hit your usage limit. Visit the settings or try again at 11:59 PM."
    expected = local(today.year, today.month, today.day, 23, 59)
    assert codex_limit_text(at, NOW) == (expected if expected >= NOW else expected + 86400)
    dated = "You've hit your usage limit ... try again at Aug 8th, 2026 12:30 PM"
    assert codex_limit_text(dated, NOW) == local(2026, 8, 8, 12, 30)
    assert codex_limit_text("You've hit your usage limit. Try again later.", NOW) is None
    assert codex_limit_text("Reconnecting... 2/5, try again in 5 seconds", NOW) is None

    state = CodexState()
    failed = {"type": "turn.failed", "error": {"message": said}}
    list(codex_event({"type": "error", "message": "Reconnecting... 2/5"}, state))
    assert state.limit is None
    list(codex_event(failed, state))
    assert state.limit is not None and state.limit[1] > NOW


def fake_cli(tmp_path: Path, lines: list[dict[str, object]]) -> str:
    """A stand-in for `claude` or `codex` that prints `lines` and exits 1."""
    script = tmp_path / "fake-cli"
    body = "".join(f"print({json.dumps(json.dumps(line))})\n" for line in lines)
    script.write_text(f"#!{sys.executable}\n{body}raise SystemExit(1)\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("kind", ["claude-code", "codex"])
async def test_a_cli_agent_stopped_by_its_usage_limit_raises_it(tmp_path: Path, kind: str) -> None:
    if kind == "claude-code":
        lines: list[dict[str, object]] = [
            {"type": "system", "subtype": "init", "session_id": "s1"},
            {
                "type": "rate_limit_event",
                "rate_limit_info": {"status": "rejected", "resetsAt": 1780003600},
            },
            {"type": "result", "subtype": "success", "is_error": True,
             "result": "Claude AI usage limit reached|1780003600", "session_id": "s1"},
        ]  # fmt: skip
    else:
        message = "You've hit your usage limit. Try again in 2 hours."
        lines = [
            {"type": "thread.started", "thread_id": "01a20cde-2e22-7bd2-99cd-43f327255d4d"},
            {"type": "error", "message": message},
            {"type": "turn.failed", "error": {"message": message}},
        ]
    agent = build_agent(AgentConfig(name=kind, kind=kind, binary=fake_cli(tmp_path, lines)))
    worktree = tmp_path / "wt"
    worktree.mkdir()
    task = AgentTask("r1", 1, worktree, "Do it.", tmp_path / "scratch", {"PATH": "/usr/bin:/bin"})
    with pytest.raises(UsageLimited) as raised:
        async for _ in agent.run(task):
            pass
    if kind == "claude-code":
        assert raised.value.reset_at == 1780003600.0
    else:
        assert raised.value.reset_at > NOW and "usage limit" in str(raised.value)


async def test_a_cli_agent_whose_turn_failed_without_a_reset_just_fails(tmp_path: Path) -> None:
    lines: list[dict[str, object]] = [
        {"type": "assistant", "error": "rate_limit", "message": {"content": []}},
        {"type": "result", "subtype": "success", "is_error": True, "result": "rate limited"},
    ]
    agent = build_agent(AgentConfig(name="c", kind="claude-code", binary=fake_cli(tmp_path, lines)))
    worktree = tmp_path / "wt"
    worktree.mkdir()
    task = AgentTask("r1", 1, worktree, "Do it.", tmp_path / "scratch", {"PATH": "/usr/bin:/bin"})
    events = [event async for event in agent.run(task)]
    assert not events[-1].ok  # type: ignore[attr-defined]
