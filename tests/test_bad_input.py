"""Bad input through the real `looptui` command: one clear line, the right exit status, and
nothing of the user's lost or changed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from conftest import BUGGY_PACKAGE, FIXER, Result, cli_env, fixer_config, git, make_repo, run_cli
from looptui.engine import Engine, RunStatus
from looptui.engine.config import load_config
from looptui.engine.workspace import Repository

# -- helpers -------------------------------------------------------------------------------


def assert_user_error(result: Result, *words: str, code: int = 2) -> str:
    """Exit `code`, one `looptui: ` line on stderr holding every word, and no traceback."""
    output = result.stdout + result.stderr
    assert result.code == code, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("looptui: "), line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under `root` outside `.git`, with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def snapshot(repo: Path) -> dict[str, Any]:
    """All that a user could notice: files, HEAD, refs, worktrees and `git status`."""
    return {
        "files": files_of(repo),
        "head": git(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False),
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
    }


def runs_of(repo: Path) -> list[dict[str, Any]]:
    result = run_cli(repo, "status", "--json")
    assert result.code == 0, result.stderr
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


def assert_no_run_left_anything(repo: Path) -> None:
    assert runs_of(repo) == []
    assert git(repo, "branch", "--list", "looptui/*") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    worktrees = Repository(repo).worktrees_dir
    assert not worktrees.exists() or not any(worktrees.iterdir())


def repo_with(tmp_path: Path, config: dict[str, Any]) -> Path:
    return make_repo(tmp_path / "repo", {**BUGGY_PACKAGE, "tools/fix.py": FIXER}, config)


def successful_run(repo: Path) -> dict[str, Any]:
    result = run_cli(repo, "run", "fix")
    assert result.code == 0, result.stdout + result.stderr
    [run] = runs_of(repo)
    assert run["status"] == "succeeded"
    return run


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by its new parent) is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal, even when pytest was started with it ignored
    (a background job), in which case Python would install no handler of its own."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- 1, 2: no repository, no commits -------------------------------------------------------


@pytest.mark.parametrize("args", [("run", "fix"), ("status",), ("init",)], ids=" ".join)
def test_outside_a_git_repository(tmp_path: Path, args: tuple[str, ...]) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine\n")
    if subprocess.run(["git", "rev-parse"], cwd=plain, capture_output=True).returncode == 0:
        pytest.skip("the temporary directory is inside a git repository")

    result = run_cli(plain, *args)

    assert_user_error(result, "not a git repository", str(plain))
    assert files_of(plain) == {"notes.txt": b"mine\n"}
    assert not (plain / ".git").exists()


def test_a_repository_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "looptui.toml").write_text(tomli_w.dumps(fixer_config()))
    (repo / "draft.py").write_text("x = 1\n")
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, "no commits")
    assert snapshot(repo) == before
    assert not (repo / ".git" / "looptui").exists()


def test_no_config_file_points_at_init(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, str(repo / "looptui.toml"), "not found", "looptui init")
    assert snapshot(repo) == before
    assert not (repo / ".git" / "looptui").exists()


def test_a_detached_head_needs_a_branch(repo: Path) -> None:
    git(repo, "checkout", "--quiet", "--detach")
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, "detached", "base")
    assert snapshot(repo) == before
    assert_no_run_left_anything(repo)


def test_a_base_branch_that_does_not_exist(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, fixer_config(base="no-such-branch"))
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, "no-such-branch")
    assert snapshot(repo) == before
    assert_no_run_left_anything(repo)


# -- 3, 4: unknown loop, bad configuration -------------------------------------------------


def test_an_unknown_loop_lists_the_known_ones(repo: Path) -> None:
    before = snapshot(repo)

    result = run_cli(repo, "run", "nope")

    line = assert_user_error(result, "unknown loop", "nope", "fix")
    assert "looptui.toml" in line
    assert snapshot(repo) == before
    assert_no_run_left_anything(repo)


def test_broken_toml_names_the_file_and_the_line(repo: Path) -> None:
    config = repo / "looptui.toml"
    text = config.read_text()
    lines = text.splitlines()
    lines.insert(2, "this is not = = toml")  # line 3
    config.write_text("\n".join(lines) + "\n")
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, f"{config}:3", "invalid TOML")
    assert snapshot(repo) == before
    assert not (repo / ".git" / "looptui").exists()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        table = config
        for name in parents:
            table = table[name]
        table[last] = value

    return edit


def _both_prompts(config: dict[str, Any]) -> None:
    config["loops"]["fix"]["prompt_file"] = "PROMPT.md"


BAD_VALUES = {
    "zero iterations": (_set("loops.fix.max_iterations", 0), ["loops.fix.max_iterations", "0"]),
    "text iterations": (
        _set("loops.fix.max_iterations", "x"),
        ["loops.fix.max_iterations", "positive integer"],
    ),
    "misspelt key": (
        _set("loops.fix.max_iteration", 3),
        ["loops.fix.max_iteration", "unknown key", "max_iterations"],
    ),
    "undefined agent": (_set("loops.fix.agent", "ghost"), ["loops.fix.agent", "ghost", "fixer"]),
    "bad duration": (
        _set("loops.fix.iteration_timeout", "soon"),
        ["loops.fix.iteration_timeout", "soon", "duration"],
    ),
    "two prompts": (_both_prompts, ["loops.fix", "prompt", "prompt_file"]),
    "unknown agent kind": (
        _set("agents.fixer.kind", "robot"),
        ["agents.fixer.kind", "robot", "command"],
    ),
}


@pytest.mark.parametrize("edit, words", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_invalid_values_name_the_file_and_the_key(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], words: list[str]
) -> None:
    config = fixer_config()
    edit(config)
    repo = make_repo(
        tmp_path / "repo",
        {**BUGGY_PACKAGE, "tools/fix.py": FIXER, "PROMPT.md": "Fix it.\n"},
        config,
    )
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, str(repo / "looptui.toml"), *words)
    assert snapshot(repo) == before
    assert not (repo / ".git" / "looptui").exists()


# -- 5: init ---------------------------------------------------------------------------------


def test_init_never_overwrites(repo: Path) -> None:
    (repo / "looptui.toml").write_text("# my own settings\n")
    before = snapshot(repo)

    result = run_cli(repo, "init")

    assert_user_error(result, str(repo / "looptui.toml"), "already exists")
    assert snapshot(repo) == before
    assert (repo / "looptui.toml").read_text() == "# my own settings\n"


def test_init_writes_a_starter_that_runs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"tests/test_ok.py": "def test_ok():\n    pass\n"})
    (repo / "sub").mkdir()

    result = run_cli(repo / "sub", "init")

    assert result.code == 0, result.stderr
    assert_no_traceback(result)
    path = repo / "looptui.toml"
    assert str(path) in result.stdout
    tomllib.loads(path.read_text())
    config = load_config(path)
    assert config.agents[config.loops["fix"].agent].command[0] == "echo"

    run = run_cli(repo, "run", "fix")

    assert run.code == 0, run.stdout + run.stderr
    assert_no_traceback(run)
    [record] = runs_of(repo)
    assert record["status"] == "unchanged"  # the starter's agent only echoes; the tests pass


# -- 6, 7: missing agent and check commands --------------------------------------------------


def test_a_missing_agent_binary_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = fixer_config()
    config["agents"]["fixer"]["command"] = ["definitely-not-a-real-binary-xyz", "{prompt}"]
    repo = repo_with(tmp_path, config)
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, "definitely-not-a-real-binary-xyz", "not found", "fixer")
    assert snapshot(repo) == before
    assert_no_run_left_anything(repo)


def test_an_agent_missing_from_the_worktree_fails_the_run_at_once(tmp_path: Path) -> None:
    """An untracked script passes the preflight in the checkout but is absent in the worktree."""
    config = fixer_config(max_iterations=5)
    config["agents"]["fixer"]["command"] = ["./agent.sh", "{prompt}"]
    repo = repo_with(tmp_path, config)
    script = repo / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)

    result = run_cli(repo, "run", "fix")

    assert result.code == 1, result.stdout + result.stderr
    assert_no_traceback(result)
    [run] = runs_of(repo)
    assert run["status"] == "failed"
    assert run["iterations"] == 1
    assert "cannot start ./agent.sh" in run["error"]


def test_a_missing_check_command_is_refused_before_anything_starts(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path, fixer_config(checks=[{"name": "lint", "run": "no-such-checker-xyz --flag"}])
    )
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert_user_error(result, "no-such-checker-xyz", "not found", "lint")
    assert snapshot(repo) == before
    assert_no_run_left_anything(repo)


def test_a_check_found_missing_at_run_time_fails_the_run_at_once(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path, fixer_config(checks=[{"name": "lint", "run": "./scripts/missing.sh"}])
    )
    before = snapshot(repo)

    result = run_cli(repo, "run", "fix")

    assert result.code == 1, result.stdout + result.stderr
    assert_no_traceback(result)
    [run] = runs_of(repo)
    assert run["status"] == "failed"
    assert run["iterations"] == 1
    assert "not found" in run["error"]
    assert "lint" in run["error"]
    assert "not found" in result.stdout
    after = snapshot(repo)
    assert (after["files"], after["head"], after["status"]) == (
        before["files"],
        before["head"],
        before["status"],
    )
    assert Path(run["worktree"]).is_dir()  # the work is kept for review


# -- 8, 9: merges that would conflict or touch uncommitted changes ----------------------------


def test_a_conflicting_merge_changes_nothing(repo: Path) -> None:
    run = successful_run(repo)
    area = repo / "shapes/area.py"
    area.write_text(area.read_text().replace("width + height", "height + width"))
    git(repo, "commit", "--quiet", "-am", "a different change to the same line")
    before = snapshot(repo)

    result = run_cli(repo, "merge", run["id"])

    assert_user_error(result, "conflict", "shapes/area.py")
    assert snapshot(repo) == before
    assert Path(run["worktree"]).is_dir()
    assert git(repo, "branch", "--list", run["branch"]).strip()
    [after] = runs_of(repo)
    assert after["status"] == "succeeded"


def test_a_merge_refuses_to_touch_an_uncommitted_change(repo: Path) -> None:
    run = successful_run(repo)
    area = repo / "shapes/area.py"
    area.write_text(area.read_text() + "# my note, not committed\n")
    before = snapshot(repo)

    result = run_cli(repo, "merge", run["id"])

    assert_user_error(result, "uncommitted", "shapes/area.py")
    assert snapshot(repo) == before
    assert area.read_bytes() == before["files"]["shapes/area.py"]
    assert Path(run["worktree"]).is_dir()
    assert git(repo, "branch", "--list", run["branch"]).strip()


def test_an_unrelated_uncommitted_change_does_not_block_a_merge(repo: Path) -> None:
    run = successful_run(repo)
    head_before = git(repo, "rev-parse", "HEAD")
    (repo / "pyproject.toml").write_text("# my own edit\n" + (repo / "pyproject.toml").read_text())
    (repo / "scratch.txt").write_text("untracked notes\n")
    mine = {name: (repo / name).read_bytes() for name in ("pyproject.toml", "scratch.txt")}

    result = run_cli(repo, "merge", run["id"])

    assert result.code == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    assert git(repo, "rev-parse", "HEAD") != head_before
    assert "width * height" in (repo / "shapes/area.py").read_text()
    assert {name: (repo / name).read_bytes() for name in mine} == mine
    status = git(repo, "status", "--porcelain").splitlines()
    assert status == [" M pyproject.toml", "?? scratch.txt"]


# -- 10: Ctrl-C --------------------------------------------------------------------------------

SLOW = textwrap.dedent(
    """\
    import os, subprocess, sys, time
    print("working slowly", flush=True)
    child = subprocess.Popen(["sleep", "60"])
    pids = sys.argv[1]
    with open(pids + ".tmp", "w") as handle:
        handle.write(f"{os.getpid()} {child.pid}")
    os.rename(pids + ".tmp", pids)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("phase", ["agent", "check"])
def test_ctrl_c_cancels_the_run_kills_its_processes_and_keeps_the_worktree(
    tmp_path: Path, phase: str
) -> None:
    """Ctrl-C while the agent works, or while a check runs, stops the whole process group."""
    pid_file = tmp_path / "slow.pids"
    slow = ["python", "tools/slow.py", str(pid_file)]
    config = fixer_config(max_iterations=1)
    if phase == "agent":
        config["agents"]["fixer"]["command"] = slow
    else:
        config["loops"]["fix"]["checks"] = [{"name": "slow", "run": shlex.join(slow)}]
    repo = make_repo(
        tmp_path / "repo", {**BUGGY_PACKAGE, "tools/fix.py": FIXER, "tools/slow.py": SLOW}, config
    )
    files_before = files_of(repo)

    process = subprocess.Popen(
        [sys.executable, "-m", "looptui", "run", "fix"],
        cwd=repo,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        wait_for(lambda: pid_file.exists() or process.poll() is not None, 30, f"the {phase}")
        assert process.poll() is None, process.communicate()
        slow_pid, child_pid = map(int, pid_file.read_text().split())
        assert alive(slow_pid) and alive(child_pid)

        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "cancelled" in stdout
    wait_for(lambda: not alive(slow_pid) and not alive(child_pid), 10, "the processes to die")
    [run] = runs_of(repo)
    assert run["status"] == "cancelled"
    assert run["finished_at"]
    assert Path(run["worktree"]).is_dir()
    assert git(repo, "branch", "--list", run["branch"]).strip()
    assert files_of(repo) == files_before
    assert git(repo, "status", "--porcelain") == ""
    # the store is consistent: other commands read it, and the run stays cancelled
    assert runs_of(repo)[0]["status"] == "cancelled"
    log = run_cli(repo, "log", run["id"])
    assert log.code == 0, log.stderr
    assert "cancelled" in log.stdout
    if phase == "agent":
        assert "working slowly" in log.stdout
    discard = run_cli(repo, "discard", run["id"], "--force")
    assert discard.code == 0, discard.stderr


GIT_THAT_WAITS = textwrap.dedent(
    """\
    #!/bin/sh
    # `git symbolic-ref` (looptui asks it for the base branch as a run starts) says it has
    # begun, then waits until the test lets it go on.
    if [ "$1" = symbolic-ref ] && [ ! -e "$LOOPTUI_TEST_STARTED" ]; then
        : > "$LOOPTUI_TEST_STARTED"
        while [ ! -e "$LOOPTUI_TEST_GO_ON" ]; do sleep 0.02; done
    fi
    exec "$LOOPTUI_TEST_REAL_GIT" "$@"
    """
)


def test_ctrl_c_while_the_run_starts_cancels_it_cleanly(tmp_path: Path) -> None:
    """Ctrl-C before the run's first step: exit 130, one line, the run recorded cancelled."""
    real_git = shutil.which("git")
    assert real_git is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(GIT_THAT_WAITS)
    wrapper.chmod(0o755)
    started, go_on = tmp_path / "started", tmp_path / "go-on"
    agent_ran = tmp_path / "agent-ran"
    config = fixer_config(max_iterations=1)
    config["agents"]["fixer"]["command"] = [
        "python",
        "-c",
        "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()",
        str(agent_ran),
    ]
    repo = repo_with(tmp_path, config)
    before = snapshot(repo)
    env = cli_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.update(
        LOOPTUI_TEST_STARTED=str(started),
        LOOPTUI_TEST_GO_ON=str(go_on),
        LOOPTUI_TEST_REAL_GIT=real_git,
    )

    process = subprocess.Popen(
        [sys.executable, "-m", "looptui", "run", "fix"],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        wait_for(lambda: started.exists() or process.poll() is not None, 30, "the run to start")
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        go_on.touch()
        stdout, stderr = process.communicate(timeout=30)
    finally:
        go_on.touch()
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert not agent_ran.exists()
    after = snapshot(repo)
    assert (after["files"], after["head"], after["status"]) == (
        before["files"],
        before["head"],
        before["status"],
    )
    runs = runs_of(repo)
    assert [run["status"] for run in runs] in ([], ["cancelled"]), runs
    for run in runs:
        assert run["finished_at"]
        discarded = run_cli(repo, "discard", run["id"])
        assert discarded.code == 0, discarded.stderr
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert git(repo, "branch", "--list", "looptui/*") == ""


async def test_a_run_stopped_before_its_first_step_is_recorded_cancelled(repo: Path) -> None:
    """In-process: the CLI cannot hit this moment on purpose. A task cancelled before its
    first step never runs its body, so the engine must record the cancellation itself."""
    config = load_config(repo / "looptui.toml")
    engine = await Engine.open(repo, cli_env(), config)
    try:
        stopped = await engine.start_run("fix")
        await engine.stop(stopped.id)  # no await in between: its task has not started
        assert (await engine.store.run(stopped.id)).status is RunStatus.CANCELLED
        closed = await engine.start_run("fix")
    finally:
        await engine.close()  # cancels `closed` before its first step too
    engine = await Engine.open(repo, cli_env())
    try:
        run = await engine.store.run(closed.id)
    finally:
        await engine.close()
    assert run.status is RunStatus.CANCELLED
    assert run.finished_at


CHATTY = textwrap.dedent(
    """\
    import os, sys, time
    with open(sys.argv[1] + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    for number in range(1200):
        print("still working", number, flush=True)
        time.sleep(0.05)
    """
)


def test_a_closed_stdout_stops_the_run_instead_of_hanging(tmp_path: Path) -> None:
    """`looptui run fix | head -n 1`: the reader goes away while the agent is talking."""
    pid_file = tmp_path / "chatty.pid"
    config = fixer_config(max_iterations=1)
    config["agents"]["fixer"]["command"] = ["python", "tools/chatty.py", str(pid_file)]
    repo = make_repo(
        tmp_path / "repo",
        {**BUGGY_PACKAGE, "tools/fix.py": FIXER, "tools/chatty.py": CHATTY},
        config,
    )

    process = subprocess.Popen(
        [sys.executable, "-m", "looptui", "run", "fix"],
        cwd=repo,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("run ")
        wait_for(lambda: pid_file.exists() or process.poll() is not None, 30, "the agent")
        process.stdout.close()  # like `head -n 1` exiting
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.stderr.close()

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    agent_pid = int(pid_file.read_text())
    wait_for(lambda: not alive(agent_pid), 10, "the agent to be gone")
    [run] = runs_of(repo)
    assert run["status"] == "cancelled"
    assert run["finished_at"]
    assert Path(run["worktree"]).is_dir()


# -- 11: discard -------------------------------------------------------------------------------


def test_discard_keeps_unmerged_work_unless_forced(repo: Path) -> None:
    run = successful_run(repo)
    before = snapshot(repo)

    refused = run_cli(repo, "discard", run["id"])

    assert_user_error(refused, run["id"], "not merged", "--force")
    assert snapshot(repo) == before
    assert Path(run["worktree"]).is_dir()
    assert runs_of(repo)[0]["status"] == "succeeded"

    forced = run_cli(repo, "discard", run["id"], "--force")

    assert forced.code == 0, forced.stderr
    assert not Path(run["worktree"]).exists()
    assert git(repo, "branch", "--list", run["branch"]) == ""
    assert runs_of(repo)[0]["status"] == "discarded"
    assert files_of(repo) == before["files"]
    assert git(repo, "rev-parse", "HEAD") == before["head"]


def test_discard_after_a_squash_merge_by_hand_needs_no_force(repo: Path) -> None:
    run = successful_run(repo)
    git(repo, "merge", "--quiet", "--squash", run["branch"])
    git(repo, "commit", "--quiet", "-m", "squash the fix by hand")
    before = snapshot(repo)

    result = run_cli(repo, "discard", run["id"])

    assert result.code == 0, result.stdout + result.stderr
    assert not Path(run["worktree"]).exists()
    assert git(repo, "branch", "--list", run["branch"]) == ""
    assert runs_of(repo)[0]["status"] == "discarded"
    assert files_of(repo) == before["files"]
    assert git(repo, "rev-parse", "HEAD") == before["head"]


def test_merge_squash_then_discard_of_a_run_with_the_same_change(repo: Path) -> None:
    first = successful_run(repo)
    second_result = run_cli(repo, "run", "fix")
    assert second_result.code == 0, second_result.stdout + second_result.stderr
    [second] = [run for run in runs_of(repo) if run["id"] != first["id"]]

    merged = run_cli(repo, "merge", first["id"], "--squash")
    assert merged.code == 0, merged.stderr

    result = run_cli(repo, "discard", second["id"])

    assert result.code == 0, result.stdout + result.stderr
    assert not Path(second["worktree"]).exists()
    statuses = {run["id"]: run["status"] for run in runs_of(repo)}
    assert statuses == {first["id"]: "merged", second["id"]: "discarded"}


# -- 12: run ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["log", "diff", "merge", "discard"])
@pytest.mark.parametrize("prefix", ["zzzz", "%", "_"])
def test_an_unknown_run_id(tmp_path: Path, command: str, prefix: str) -> None:
    repo = repo_with(tmp_path, fixer_config())
    before = snapshot(repo)

    result = run_cli(repo, command, prefix)

    assert_user_error(result, "no run matches", prefix)
    assert snapshot(repo) == before


def test_unknown_run_id_with_runs_present(repo: Path) -> None:
    run = successful_run(repo)
    before = snapshot(repo)
    unknown = "zz" + run["id"][2:]

    for command in ("log", "diff", "merge", "discard"):
        result = run_cli(repo, command, unknown)
        assert_user_error(result, "no run matches", unknown)
    assert snapshot(repo) == before
    assert runs_of(repo)[0]["status"] == "succeeded"
