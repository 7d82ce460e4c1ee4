"""Every agent kind resumes after its service is killed with SIGKILL in the middle of an
iteration: the next service marks the run interrupted, resumes it in the same worktree (same
path, same branch), keeps every event stored before the kill, and carries the turn on.

Everything is real: `looptui run --detach` starts the repository's service, the test waits
until the iteration is observably under way (a line of output in the store, a marker file
the agent's command appends to, a request the fake model server received), SIGKILLs the
service by the pid `looptui service status --json` gives, and a client (`looptui attach`,
`looptui service start`) starts the next one. The command and replay agents do the
interrupted iteration again; Claude Code and Codex resume their session (`--resume=<id>`,
`exec resume <thread>`); the API agents answer the tool call that was running when the
service died as interrupted, and never run it again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from cli_tools import require_cli
from conftest import Result, cli_env, git, make_repo, run_cli
from fake_models import FakeModelServer, Say, ToolUse
from looptui.engine.agents.model_loop import INTERRUPTED
from looptui.engine.workspace import Repository
from process_support import wait_for as wait_until
from test_agent_resume import CALL_ID, interrupted_answer

pytestmark = pytest.mark.usefixtures("service")

T = TypeVar("T")
ANTHROPIC_KEY = "sk-ant-test-" + "k" * 32
OPENAI_KEY = "sk-test-" + "o" * 32
GREETING = "hello from the agent"
CHECK = {"name": "greeted", "run": f"grep -q '{GREETING}' hello.txt"}
WAIT = 90.0  # seconds for anything the test waits on; a hang fails the test

Event = tuple[int, str, str]  # id, kind, data as stored


# -- helpers -------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """`process_support.wait_for`, with this file's timeout."""
    return wait_until(condition, what, timeout)


def query(repo: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    """Rows of the repository's store, read as any reader would (the service may be dead,
    and a looptui command would start another)."""
    path = Repository(repo).store_path
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, args).fetchall()


def run_row(repo: Path, run_id: str) -> sqlite3.Row:
    [row] = query(repo, "SELECT * FROM runs WHERE id = ?", run_id)
    return row


def events(repo: Path, run_id: str) -> list[Event]:
    rows = query(repo, "SELECT id, kind, data FROM events WHERE run_id = ? ORDER BY id", run_id)
    return [(row["id"], row["kind"], row["data"]) for row in rows]


def printed(repo: Path, run_id: str, text: str) -> list[Event]:
    """The stored output lines of the run that contain `text`."""
    return [e for e in events(repo, run_id) if e[1] == "output" and text in e[2]]


def statuses(stored: list[Event]) -> list[str]:
    return [json.loads(data)["status"] for _, kind, data in stored if kind == "status"]


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie that init has yet to reap does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def start_detached(repo: Path, loop: str, env: dict[str, str]) -> str:
    """Start a run of `loop` in the repository's service (starting it); returns the run id."""
    result = run_cli(repo, "run", loop, "--detach", env=env)
    assert result.code == 0, result.stdout + result.stderr
    return result.stdout.strip()


def service_status(repo: Path, env: dict[str, str]) -> dict[str, Any]:
    result = run_cli(repo, "service", "status", "--json", env=env)
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def kill_service(repo: Path, env: dict[str, str]) -> int:
    """SIGKILL the repository's service, by the pid it reports, and wait until it is gone."""
    status = service_status(repo, env)
    assert status["running"], status
    process = psutil.Process(status["pid"])
    process.kill()
    process.wait(timeout=10)
    return int(status["pid"])


def attach(repo: Path, run_id: str, env: dict[str, str]) -> Result:
    """`looptui attach RUN`: starts the next service (which resumes the run), follows it."""
    return run_cli(repo, "attach", run_id, env=env, timeout=WAIT * 2)


class Snapshot:
    """What the store held of a run when its service was killed."""

    def __init__(self, repo: Path, run_id: str) -> None:
        self.events = events(repo, run_id)
        row = run_row(repo, run_id)
        self.worktree = Path(row["worktree"])
        self.branch = str(row["branch"])
        self.last_id = self.events[-1][0]


def assert_resumed_in_place(repo: Path, run_id: str, before: Snapshot) -> list[Event]:
    """The run succeeded in the worktree and on the branch it had, every event stored before
    the kill is kept as it was, and its status went interrupted, queued, running again.
    Returns the events stored after the kill."""
    row = run_row(repo, run_id)
    assert row["status"] == "succeeded", dict(row)
    assert (Path(row["worktree"]), row["branch"]) == (before.worktree, before.branch)
    assert before.worktree.is_dir()
    head = git(before.worktree, "rev-parse", "--abbrev-ref", "HEAD").strip()
    assert head == before.branch
    listed = git(repo, "worktree", "list", "--porcelain")
    assert f"branch refs/heads/{before.branch}" in listed
    assert listed.count(run_id) == 2  # its worktree and its branch: no second checkout
    stored = events(repo, run_id)
    assert stored[: len(before.events)] == before.events  # same ids, same contents
    after = [event for event in stored if event[0] > before.last_id]
    assert statuses(after)[:3] == ["interrupted", "queued", "running"]
    assert statuses(after)[-1] == "succeeded"
    [iteration] = query(repo, "SELECT * FROM iterations WHERE run_id = ?", run_id)
    assert iteration["number"] == 1 and iteration["finished_at"] is not None
    return after


# -- the command and replay agents do the interrupted iteration again ------------------------

SLOW_AGENT = textwrap.dedent(
    """\
    import os, pathlib, sys, time
    marker = pathlib.Path(sys.argv[1])
    first = not marker.exists()
    with marker.open("a") as out:
        out.write(f"{os.getpid()}\\n")
    print("working on it", flush=True)
    if first or "always" in sys.argv[2:]:
        time.sleep(120)  # the first turn is killed with its service
    pathlib.Path("hello.txt").write_text("GREETING\\n")
    print("wrote hello.txt", flush=True)
    """
).replace("GREETING", GREETING)


def command_repo(tmp_path: Path, *extra: str, **loop: Any) -> tuple[Path, Path]:
    """A repository whose `greet` loop runs a command agent that appends its pid to a marker
    outside the worktree and, the first time, sleeps until it is killed."""
    marker = tmp_path / "marker"
    config = {
        "agents": {
            "slow": {
                "kind": "command",
                "command": ["python", "tools/slow.py", str(marker), *extra],
            }
        },
        "loops": {
            "greet": {
                "prompt": "Write hello.txt.",
                "agent": "slow",
                "checks": [CHECK],
                "max_iterations": 2,
                **loop,
            }
        },
    }
    files = {"README.md": "greetings\n", "tools/slow.py": SLOW_AGENT}
    return make_repo(tmp_path / "repo", files, config), marker


def test_a_command_agent_does_the_interrupted_iteration_again(tmp_path: Path) -> None:
    repo, marker = command_repo(tmp_path)
    env = cli_env()
    run_id = start_detached(repo, "greet", env)
    wait_for(lambda: printed(repo, run_id, "working on it"), "the agent's first line")
    before = Snapshot(repo, run_id)
    [first_agent] = lines(marker)
    kill_service(repo, env)
    assert alive(int(first_agent))  # the agent outlived its service

    result = attach(repo, run_id, env)

    assert result.code == 0, result.stdout + result.stderr
    assert_resumed_in_place(repo, run_id, before)
    assert len(lines(marker)) == 2  # the iteration ran again
    assert not alive(int(first_agent))  # the one left behind was killed
    assert (before.worktree / "hello.txt").read_text() == GREETING + "\n"
    assert len(printed(repo, run_id, "working on it")) == 2


REPLAY_SCRIPT: list[dict[str, Any]] = [
    {"log": "reading the code"},
    {"write": {"path": "hello.txt", "content": GREETING + "\n"}},
    {"at": 120, "message": "wrote hello.txt"},
]


def test_a_replay_agent_plays_the_interrupted_iteration_again(tmp_path: Path) -> None:
    config = {
        "agents": {"player": {"kind": "replay", "script": "story.jsonl"}},
        "loops": {
            "greet": {"prompt": "Write hello.txt.", "agent": "player", "checks": [CHECK]},
        },
    }
    script = "\n".join(json.dumps(step) for step in REPLAY_SCRIPT) + "\n"
    repo = make_repo(tmp_path / "repo", {"story.jsonl": script}, config)
    env = cli_env()
    run_id = start_detached(repo, "greet", env)
    wait_for(lambda: printed(repo, run_id, "reading the code"), "the replay's first line")
    before = Snapshot(repo, run_id)
    kill_service(repo, env)
    # while the service is down, the script loses its long pause: the resumed turn ends soon
    quick = [{**step, "at": 0} for step in REPLAY_SCRIPT]
    (repo / "story.jsonl").write_text("\n".join(json.dumps(step) for step in quick) + "\n")

    result = attach(repo, run_id, env)

    assert result.code == 0, result.stdout + result.stderr
    after = assert_resumed_in_place(repo, run_id, before)
    assert [e for e in after if e[1] == "output" and "reading the code" in e[2]]
    assert (before.worktree / "hello.txt").read_text() == GREETING + "\n"


# -- the API agents answer the call that was running as interrupted, and never run it again --

API_AGENTS = {
    "anthropic": {"kind": "anthropic", "model": "claude-test", "max_retries": 0},
    "chat": {"kind": "openai", "api": "chat", "max_retries": 0},
    "responses": {"kind": "openai", "api": "responses", "model": "gpt-test", "max_retries": 0},
}


def model_env(server: FakeModelServer, home: Path) -> dict[str, str]:
    """The environment of `looptui` (and so of its service) for agents of the fake server."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".codex").mkdir(exist_ok=True)
    env = cli_env()
    env.update(
        HOME=str(home),
        CODEX_HOME=str(home / ".codex"),
        ANTHROPIC_BASE_URL=server.url,
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        OPENAI_API_KEY=OPENAI_KEY,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    return env


def model_repo(tmp_path: Path, agent: dict[str, Any]) -> Path:
    config = {
        "agents": {"model": agent},
        "loops": {
            "greet": {
                "prompt": "Write hello.txt with a greeting.",
                "agent": "model",
                "checks": [CHECK],
                "max_iterations": 2,
                "iteration_timeout": "3m",
            }
        },
    }
    return make_repo(tmp_path / "repo", {"README.md": "greetings\n"}, config)


def posts(server: FakeModelServer) -> list[Any]:
    return [request for request in server.requests if request.method == "POST"]


@pytest.mark.parametrize("backend", list(API_AGENTS))
def test_an_api_agent_answers_the_call_cut_short_as_interrupted(
    tmp_path: Path, backend: str
) -> None:
    marker = tmp_path / "marker"
    slow = {"command": f"echo ran >> {marker}; sleep 60"}
    write = {"path": "hello.txt", "content": GREETING + "\n"}
    with FakeModelServer(
        [ToolUse("run_command", slow, id=CALL_ID), ToolUse("write_file", write), Say("Done.")]
    ) as server:
        url = server.url if backend == "anthropic" else server.url + "/v1"
        repo = model_repo(tmp_path, {**API_AGENTS[backend], "base_url": url})
        env = model_env(server, tmp_path / "home")
        run_id = start_detached(repo, "greet", env)
        wait_for(lambda: lines(marker) == ["ran"], "the model's command to run")
        wait_for(lambda: run_row(repo, run_id)["resume_token"], "the session to be stored")
        before = Snapshot(repo, run_id)
        token = run_row(repo, run_id)["resume_token"]
        kill_service(repo, env)

        result = attach(repo, run_id, env)

        assert result.code == 0, result.stdout + result.stderr
        after = assert_resumed_in_place(repo, run_id, before)
        assert lines(marker) == ["ran"]  # the call was not run again
        assert run_row(repo, run_id)["resume_token"] == token  # the same conversation
        requests = posts(server)
        assert len(requests) == 3
        _, results = interrupted_answer(requests[1].body or {}, backend)
        assert len(results) == 1 and INTERRUPTED in json.dumps(results[0])
        assert "Write hello.txt with a greeting." in json.dumps(requests[1].body)
    answered = [json.loads(data) for _, kind, data in after if kind == "tool_result"]
    assert {"name": "run_command", "output": INTERRUPTED, "is_error": True} in [
        {key: answer[key] for key in ("name", "output", "is_error")} for answer in answered
    ]
    assert (before.worktree / "hello.txt").read_text() == GREETING + "\n"


# -- Claude Code and Codex resume their session ---------------------------------------------


def logging_binary(tmp_path: Path, real: str) -> tuple[str, Path]:
    """A stand-in for the real CLI that writes its command line to a log, then becomes it:
    the test reads how each turn was started."""
    log = tmp_path / f"{Path(real).name}-argv.log"
    wrapper = tmp_path / f"{Path(real).name}-logged"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), log


CLI_AGENTS: dict[str, dict[str, Any]] = {
    "claude-code": {
        "kind": "claude-code",
        "model": "claude-test",
        "permission_mode": "acceptEdits",  # bypassPermissions is refused as root
        "allowed_tools": ["Write", "Edit", "Read", "Bash"],
    },
    "codex": {
        "kind": "codex",
        "model": "gpt-test",
        "api_key_env": "OPENAI_API_KEY",
        "sandbox": "danger-full-access",  # Codex's Linux sandbox cannot start in containers
    },
}


@pytest.mark.parametrize("kind", list(CLI_AGENTS))
def test_a_cli_agent_resumes_its_session(tmp_path: Path, kind: str) -> None:
    real = require_cli("claude" if kind == "claude-code" else "codex")
    binary, argv_log = logging_binary(tmp_path, real)
    marker = tmp_path / "marker"
    slow = f"echo ran >> {marker}; sleep 60"
    write = f"printf '{GREETING}\\n' > hello.txt"
    if kind == "claude-code":
        calls = [ToolUse("Bash", {"command": slow}), ToolUse("Bash", {"command": write})]
    else:
        calls = [ToolUse("exec_command", {"cmd": slow}), ToolUse("exec_command", {"cmd": write})]
    with FakeModelServer([calls[0]]) as server:
        agent = {**CLI_AGENTS[kind], "binary": binary}
        if kind == "codex":
            agent["base_url"] = server.url + "/v1"
        repo = model_repo(tmp_path, agent)
        env = model_env(server, tmp_path / "home")
        run_id = start_detached(repo, "greet", env)
        wait_for(lambda: lines(marker) == ["ran"], "the model's command to run")
        session = wait_for(lambda: run_row(repo, run_id)["resume_token"], "the session id")
        before = Snapshot(repo, run_id)
        kill_service(repo, env)
        asked = len(posts(server))
        server.add(calls[1], Say("Done."))

        result = attach(repo, run_id, env)

        assert result.code == 0, result.stdout + result.stderr
        assert_resumed_in_place(repo, run_id, before)
        first, *resumed = lines(argv_log)
        assert session not in first
        assert len(resumed) == 1, resumed
        if kind == "claude-code":
            assert resumed[0].endswith(f"--resume={session}")
        else:
            assert "exec resume " in resumed[0] and resumed[0].endswith(f" {session} -")
        assert run_row(repo, run_id)["resume_token"] == session
        assert lines(marker) == ["ran"]  # the resumed session did not run the command again
        later = posts(server)[asked:]
        assert later and "Write hello.txt with a greeting." in json.dumps(later[0].body)
    assert (before.worktree / "hello.txt").read_text() == GREETING + "\n"


# -- what does not resume on its own ----------------------------------------------------------


def test_a_loop_that_pauses_on_interrupt_waits_for_looptui_resume(tmp_path: Path) -> None:
    repo, marker = command_repo(tmp_path, on_interrupt="pause")
    env = cli_env()
    run_id = start_detached(repo, "greet", env)
    wait_for(lambda: printed(repo, run_id, "working on it"), "the agent's first line")
    before = Snapshot(repo, run_id)
    kill_service(repo, env)
    started = run_cli(repo, "service", "start", env=env)
    assert started.code == 0, started.stderr

    # the service answers only once it has resumed what it resumes
    [run] = json.loads(run_cli(repo, "status", "--json", env=env).stdout)
    assert run["status"] == "interrupted"
    assert service_status(repo, env)["active_runs"] == []
    assert len(lines(marker)) == 1

    resumed = run_cli(repo, "resume", run_id, env=env)
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    assert f"resumed run {run_id}" in resumed.stdout
    result = attach(repo, run_id, env)
    assert result.code == 0, result.stdout + result.stderr
    assert_resumed_in_place(repo, run_id, before)
    assert len(lines(marker)) == 2


def test_a_run_killed_max_resumes_times_in_a_row_is_not_resumed_again(tmp_path: Path) -> None:
    repo, marker = command_repo(tmp_path, "always", max_resumes=2)
    env = cli_env()
    run_id = start_detached(repo, "greet", env)
    for attempt in range(1, 4):  # the first turn, then two resumes, each killed mid-turn
        wait_for(lambda: len(lines(marker)) == attempt, f"turn {attempt} to start")  # noqa: B023
        wait_for(lambda: len(printed(repo, run_id, "working on it")) == attempt, "its output")  # noqa: B023
        kill_service(repo, env)
        if attempt < 3:
            started = run_cli(repo, "service", "start", env=env)
            assert started.code == 0, started.stderr
    before = events(repo, run_id)

    started = run_cli(repo, "service", "start", env=env)
    assert started.code == 0, started.stderr
    [run] = json.loads(run_cli(repo, "status", "--json", env=env).stdout)

    assert run["status"] == "interrupted"
    assert len(lines(marker)) == 3  # not a fourth turn
    assert run_row(repo, run_id)["resumes"] == 2
    errors = service_status(repo, env)["errors"]
    assert any(run_id in error and "max_resumes = 2" in error for error in errors), errors
    said = [
        json.loads(data)["message"]
        for event_id, kind, data in events(repo, run_id)
        if kind == "error" and event_id > before[-1][0]
    ]
    assert len(said) == 1 and "max_resumes = 2" in said[0], said
    # a service started later says it again in its status, but not again in the run's events
    assert run_cli(repo, "service", "restart", env=env).code == 0
    errors = service_status(repo, env)["errors"]
    assert any(run_id in error and "max_resumes = 2" in error for error in errors), errors
    refusals = [e for e in events(repo, run_id) if e[1] == "error" and "max_resumes" in e[2]]
    assert len(refusals) == 1


@pytest.mark.parametrize("how", ["directory", "worktree-and-branch"])
def test_a_run_whose_worktree_was_deleted_fails_naming_it(tmp_path: Path, how: str) -> None:
    """Deleted with `rm -r`, or with git (`worktree remove`, `branch -D`) so that nothing is
    left to tell that the run ever had one: either way it is not made again from the base."""
    repo, marker = command_repo(tmp_path)
    env = cli_env()
    run_id = start_detached(repo, "greet", env)
    wait_for(lambda: printed(repo, run_id, "working on it"), "the agent's first line")
    before = Snapshot(repo, run_id)
    kill_service(repo, env)
    if how == "directory":
        shutil.rmtree(before.worktree)
    else:
        git(repo, "worktree", "remove", "--force", str(before.worktree))
        git(repo, "branch", "-D", before.branch)

    result = attach(repo, run_id, env)

    assert result.code != 0
    row = run_row(repo, run_id)
    assert row["status"] == "failed"
    assert str(before.worktree) in row["error"] and "gone" in row["error"], row["error"]
    assert not before.worktree.exists()  # not made again
    assert len(lines(marker)) == 1  # the agent did not run anywhere else
    worktrees = git(repo, "worktree", "list", "--porcelain")
    assert worktrees.count("worktree ") <= 2  # the repository, and at most the stale entry
    [shown] = json.loads(run_cli(repo, "status", "--json", env=env).stdout)
    assert str(before.worktree) in shown["error"]
