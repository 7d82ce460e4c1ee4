"""Through the real `looptui` command: a deleted store is reported, an unusable state
directory or a NUL in a prompt is one line and exit 2, any bug is one line pointing at a log,
and prompt files never outlive looptui, even one killed with SIGKILL."""

from __future__ import annotations

import email.utils
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import BUGGY_PACKAGE, FIXER, Result, cli_env, fixer_config, git, make_repo, run_cli
from looptui.engine.agents.model_loop import _retry_after


def assert_one_line(result: Result, *words: str, code: int = 2) -> str:
    output = result.stdout + result.stderr
    assert result.code == code, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def fixing_repo(tmp_path: Path, **loop: object) -> Path:
    return make_repo(
        tmp_path / "repo", {**BUGGY_PACKAGE, "tools/fix.py": FIXER}, fixer_config(**loop)
    )


# -- the store deleted under looptui's branches and worktrees ------------------------------


def test_a_deleted_store_is_reported_with_what_it_left_and_how_to_remove_it(
    tmp_path: Path,
) -> None:
    repo = fixing_repo(tmp_path)
    assert run_cli(repo, "run", "fix").code == 0
    assert run_cli(repo, "status").stderr == ""  # known to the store: nothing to say
    for path in (repo / ".git" / "looptui").glob("store.db*"):
        path.unlink()

    result = run_cli(repo, "status")

    assert result.code == 0, result.stderr
    warning = assert_one_line(result, "1 looptui branch(es) and 1 worktree(s)", code=0)
    assert "no runs yet" in result.stdout
    command = warning.split("remove them with: ", 1)[1]
    again = run_cli(repo, "status")  # still reported: a new empty store does not hide them
    assert again.stderr == result.stderr
    subprocess.run(command, shell=True, cwd=repo, check=True, capture_output=True)
    assert git(repo, "branch", "--list", "looptui/*") == ""
    assert "refs/heads/looptui/" not in git(repo, "worktree", "list", "--porcelain")
    assert run_cli(repo, "status").stderr == ""


# -- an unusable state directory -----------------------------------------------------------


@pytest.mark.parametrize("where", ["a file", "under a file", "in /proc"])
def test_an_unusable_state_directory_is_one_line(tmp_path: Path, where: str) -> None:
    repo = fixing_repo(tmp_path)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    state = {"a file": blocker, "under a file": blocker / "state", "in /proc": Path("/proc/1")}
    env = {**cli_env(), "XDG_STATE_HOME": str(state[where])}

    result = run_cli(repo, "run", "fix", env=env)

    assert_one_line(result, "looptui: cannot use ", "XDG_STATE_HOME")
    assert git(repo, "branch", "--list", "looptui/*") == ""


# -- NUL characters in a prompt ------------------------------------------------------------


def test_a_nul_in_a_prompt_of_the_config_is_one_line(tmp_path: Path) -> None:
    repo = fixing_repo(tmp_path)
    config = repo / "looptui.toml"
    config.write_text(config.read_text().replace("Make the tests pass.", "Make\\u0000them pass."))
    line = assert_one_line(run_cli(repo, "run", "fix"), "loops.fix.prompt", "NUL")
    assert line.startswith("looptui: ")


def test_a_nul_in_a_prompt_file_is_one_line(tmp_path: Path) -> None:
    repo = fixing_repo(tmp_path)
    (repo / "prompt.md").write_bytes(b"Make the tests\x00 pass.\n")
    config = repo / "looptui.toml"
    config.write_text(
        config.read_text().replace('prompt = "Make the tests pass."', 'prompt_file = "prompt.md"')
    )
    assert_one_line(run_cli(repo, "run", "fix"), "loops.fix.prompt_file", "NUL")


# -- the last resort -----------------------------------------------------------------------


def test_a_bug_is_one_line_with_its_traceback_in_the_log(tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = textwrap.dedent(
        """\
        from looptui.cli import one_line_errors

        @one_line_errors
        def command():
            {}["a key that a bug forgot"]

        command()
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**cli_env(), "XDG_STATE_HOME": str(state)},
        check=False,
    )
    result = Result(completed.returncode, completed.stdout, completed.stderr)
    log = state / "looptui" / "looptui.log"
    line = assert_one_line(result, "looptui: internal error: KeyError", str(log))
    assert "a key that a bug forgot" in line
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "a key that a bug forgot" in text


# -- prompt files --------------------------------------------------------------------------

WAITER = textwrap.dedent(
    """\
    import os, pathlib, sys, time
    pathlib.Path(os.environ["PID_FILE"]).write_text(str(os.getpid()))
    print("read", len(pathlib.Path(sys.argv[1]).read_text()), "characters", flush=True)
    time.sleep(120)
    """
)


def test_a_prompt_file_left_by_a_looptui_killed_with_sigkill_goes_at_the_next_start(
    tmp_path: Path,
) -> None:
    config = {
        "agents": {
            "waiter": {"kind": "command", "command": ["python", "-c", WAITER, "{prompt_file}"]}
        },
        "loops": {"wait": {"prompt": "a private prompt", "agent": "waiter", "checks": ["true"]}},
    }
    repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
    state = tmp_path / "state"
    pid_file = tmp_path / "agent.pid"
    env = {**cli_env(), "XDG_STATE_HOME": str(state), "PID_FILE": str(pid_file)}
    prompts = state / "looptui" / "prompts"
    looptui = subprocess.Popen(
        [sys.executable, "-m", "looptui", "run", "wait"],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert looptui.stdout is not None
        for line in looptui.stdout:  # the agent has read its prompt file
            if "characters" in line:
                break
        [left] = list(prompts.iterdir())
        assert left.name.startswith(f"{looptui.pid}-")
        assert (prompts.stat().st_mode & 0o777, left.stat().st_mode & 0o777) == (0o700, 0o600)
        looptui.send_signal(signal.SIGKILL)
        looptui.wait()
    finally:
        looptui.kill()
        looptui.wait()
        if pid_file.exists():  # the agent survives in its own process group
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert left.exists()  # nobody could remove it...

    run_cli(repo, "status", env=env)

    assert not left.exists()  # ...until looptui started again


def test_a_prompt_file_of_a_live_looptui_is_kept(tmp_path: Path) -> None:
    prompts = tmp_path / "state" / "looptui" / "prompts"
    prompts.mkdir(parents=True)
    mine = prompts / f"{os.getppid()}-r1-1-abcd.md"  # pytest's parent: alive
    mine.write_text("in use")
    run_cli(tmp_path, "status", env={**cli_env(), "XDG_STATE_HOME": str(tmp_path / "state")})
    assert mine.exists()


# -- retry-after as an HTTP date -----------------------------------------------------------


def test_retry_after_as_an_http_date_is_honoured() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert _retry_after(header, now=now) == pytest.approx(30, abs=1)
    assert _retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert _retry_after("7") == 7.0 and _retry_after("250", scale=0.001) == 0.25
    assert _retry_after("soon") is None and _retry_after("") is None


def test_status_json_still_parses_after_a_warning(tmp_path: Path) -> None:
    repo = fixing_repo(tmp_path)
    assert run_cli(repo, "run", "fix").code == 0
    for path in (repo / ".git" / "looptui").glob("store.db*"):
        path.unlink()
    result = run_cli(repo, "status", "--json")
    assert json.loads(result.stdout) == [] and "warning" in result.stderr
