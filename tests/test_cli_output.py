"""What the CLI prints: `status` complete at 80 columns, and no terminal control from agents."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import BUGGY_PACKAGE, FIXER, cli_env, fixer_config, make_repo, run_cli
from looptui.console import clean, render_event
from looptui.engine.models import NoteKind
from looptui.protocol.events import (
    AgentSaid,
    AnyPayload,
    CheckRan,
    ErrorReported,
    Event,
    NoteAdded,
    OutputPrinted,
    ToolAnswered,
)

ESCAPES = "\x1b]0;pwned title\x07\x1b[2J\x1b[H\x1b[31mred\x1b[0m \x1bP1$r\x1b\\bell\x07 \x9b5n"


def test_status_shows_every_field_of_a_run_whole_at_80_columns(repo: Path) -> None:
    assert run_cli(repo, "run", "fix").code == 0
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    result = run_cli(repo, "status", env={**cli_env(), "COLUMNS": "80"})
    assert result.code == 0, result.stderr
    text = result.stdout
    headline = text.splitlines()[0]
    assert headline.split()[:3] == [run["id"], "fix", "succeeded"]
    assert "1/3 iterations" in headline and len(headline) <= 80
    assert f"branch    {run['branch']}\n" in text
    assert f"base      main at {run['base_commit']}\n" in text  # the whole commit id
    assert f"worktree  {run['worktree']}\n" in text  # never cut short, however long
    started = run["started_at"][:10]  # local time in the table; the date agrees here
    assert f"started   {started}" in text and f"finished  {run['finished_at'][:10]}" in text


def test_status_json_carries_each_runs_last_verdict(repo: Path) -> None:
    assert run_cli(repo, "run", "fix").code == 0
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    assert run["last_verdict"]["iteration"] == 1 and run["last_verdict"]["done"] is True


def test_render_event_strips_terminal_control_from_agent_text() -> None:
    payloads: list[AnyPayload] = [
        OutputPrinted(ESCAPES, stream="stdout"),
        AgentSaid(ESCAPES),
        ErrorReported(ESCAPES),
        ToolAnswered("x", output=ESCAPES),
        CheckRan("t", "pytest", exit_code=1, passed=False, tail=ESCAPES),
        NoteAdded(NoteKind.ATTEMPT, ESCAPES),
    ]
    for payload in payloads:
        line = render_event(Event("r1", payload, 1))
        assert line is not None
        assert not any(ord(char) < 32 and char not in "\n" for char in line.plain), payload.kind
        assert "\x9b" not in line.plain and "red bell" in line.plain, payload.kind


def test_clean_keeps_text_tabs_and_newlines() -> None:
    assert clean("a\tb\nc é ✓") == "a\tb\nc é ✓"
    assert clean("50%\r60%\x08") == "50%60%"


def test_run_and_log_never_pass_an_agents_escape_sequences_to_the_terminal(
    tmp_path: Path,
) -> None:
    noisy = textwrap.dedent(
        f"""\
        import sys
        sys.stdout.write({ESCAPES!r} + "\\n")
        sys.stderr.write("[bold]not markup[/] {ESCAPES[:9]}\\n")
        """
    )
    config = fixer_config(max_iterations=1)
    config["agents"]["fixer"]["command"] = ["python", "tools/noisy.py"]
    repo = make_repo(
        tmp_path / "repo", {**BUGGY_PACKAGE, "tools/fix.py": FIXER, "tools/noisy.py": noisy}, config
    )
    ran = run_cli(repo, "run", "fix")
    assert ran.code == 1, ran.stderr
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    log = run_cli(repo, "log", run["id"])
    assert log.code == 0, log.stderr
    for output in (ran.stdout, log.stdout):
        assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output
        assert "red bell" in output and "[bold]not markup[/]" in output
