"""The service's CLI verbs and its faults, end to end with the real `looptui` command.

Every test goes through the repository's real service (the `service` fixture): the first
command starts it detached, teardown kills it. Runs use a command agent the test holds and
releases through files: each turn writes `turn-N.prompt` (the prompt it was given) to a
control directory, then waits until the test creates `release` there. Nothing sleeps to
synchronise: the tests wait, with deadlines, on what they can observe (files, output lines,
the store, processes).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import tomli_w

import looptui.client.connect
from conftest import BUGGY_PACKAGE, Result, cli_env, fixer_config, git, make_repo, run_cli
from looptui.client.connect import VersionMismatch, open_supervisor
from looptui.client.remote import RemoteSupervisor
from looptui.engine.workspace import Repository
from looptui.protocol import PROTOCOL_VERSION
from process_support import exited
from process_support import wait_for as wait_until

pytestmark = pytest.mark.usefixtures("service")

T = TypeVar("T")
WAIT = 60.0  # seconds for anything a test waits on; a hang fails the test
QUICK = 20.0  # seconds for what must happen at once (well under a run's length)
RUN_ID = re.compile(r"[0-9a-f]{8}")

HELD_AGENT = textwrap.dedent(
    """\
    import pathlib, sys, time
    prompt_file, control, mode = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    turn = len(list(control.glob("turn-*.prompt"))) + 1
    (control / f"turn-{turn}.prompt").write_text(prompt_file.read_text())
    print(f"turn {turn} started", flush=True)
    while not (control / "release").exists():
        time.sleep(0.02)
    if mode == "fix":
        path = pathlib.Path("shapes/area.py")
        path.write_text(path.read_text().replace("width + height", "width * height"))
    print(f"turn {turn} done", flush=True)
    """
)


# -- helpers -------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """`process_support.wait_for`, with this file's timeout."""
    return wait_until(condition, what, timeout)


def held_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose `fix` loop's agent fixes the bug once released, and whose `never`
    loop's agent (one iteration) never does; and the control directory."""
    control = tmp_path / "control"
    control.mkdir()
    config = fixer_config()
    for name, mode in (("held", "fix"), ("held_idle", "idle")):
        command = ["python", "tools/held.py", "{prompt_file}", str(control), mode]
        config["agents"][name] = {"kind": "command", "command": command}
    config["loops"]["fix"]["agent"] = "held"
    config["loops"]["never"] = {**config["loops"]["fix"], "agent": "held_idle", "max_iterations": 1}
    files = {**BUGGY_PACKAGE, "tools/held.py": HELD_AGENT}
    return make_repo(tmp_path / "repo", files, config), control


def turn_started(control: Path, turn: int) -> None:
    wait_for(lambda: (control / f"turn-{turn}.prompt").exists(), f"the agent's turn {turn}")


def release(control: Path) -> None:
    (control / "release").write_text("")


def detach(repo: Path, loop: str = "fix") -> str:
    result = run_cli(repo, "run", loop, "--detach")
    assert result.code == 0, result.stderr
    assert RUN_ID.fullmatch(result.stdout.strip()), result.stdout  # the id, and only it
    assert result.stdout == result.stdout.strip() + "\n"
    return result.stdout.strip()


def runs(repo: Path) -> dict[str, dict[str, Any]]:
    result = run_cli(repo, "status", "--json")
    assert result.code == 0, result.stderr
    return {run["id"]: run for run in json.loads(result.stdout)}


def service_info(repo: Path) -> dict[str, Any]:
    result = run_cli(repo, "service", "status", "--json")
    info: dict[str, Any] = json.loads(result.stdout)
    assert (result.code == 0) == info["running"], result
    return info


def answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            return False
    return True


def one_line(result: Result, *words: str) -> str:
    """The single line of stderr of a failed command, holding `words`, and no traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def stored_prompts(repo: Path, run_id: str) -> dict[int, str]:
    """The prompt of each of the run's iterations, as the store holds it."""
    with sqlite3.connect(Repository(repo).store_path) as db:
        rows = db.execute(
            "SELECT number, prompt FROM iterations WHERE run_id = ? ORDER BY number", (run_id,)
        ).fetchall()
    return {number: prompt for number, prompt in rows}


class Command:
    """A `looptui` command running in the background, its output read line by line."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "looptui", *args],
            cwd=repo,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_line(self, text: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {self.lines}") from None
            if line is None:
                raise AssertionError(f"the command ended without {text!r}: {self.lines}")
            self.lines.append(line)

    def finish(self, timeout: float = WAIT) -> Result:
        code = self.process.wait(timeout)
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return Result(code, "".join(self.lines), stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def interrupt_after(self, text: str) -> Result:
        """Ctrl-C once the command printed `text`; what it did then (killed if it hangs)."""
        try:
            self.wait_for_line(text)
            self.process.send_signal(signal.SIGINT)
            return self.finish()
        finally:
            self.kill()


# -- run --detach, status, attach ----------------------------------------------------------


def test_a_detached_run_is_driven_by_the_service_and_attach_follows_it_to_success(
    tmp_path: Path,
) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)  # returns with the agent still held: the run goes on
    turn_started(control, 1)

    run = runs(repo)[run_id]
    assert run["status"] == "running" and run["driven"] is True
    pid = service_info(repo)["pid"]
    table = run_cli(repo, "status")
    assert f"driven by the service (pid {pid})" in table.stdout, table.stdout
    assert f"the looptui service (pid {pid}) is driving 1 run" in table.stdout

    attach = Command(repo, "attach", run_id)
    try:
        attach.wait_for_line("turn 1 started")  # printed before attach: from the store
        release(control)
        result = attach.finish()
    finally:
        attach.kill()
    assert result.code == 0, result
    assert "turn 1 done" in result.stdout  # a live event
    assert f"run {run_id}: succeeded" in result.stdout
    assert runs(repo)[run_id]["driven"] is False  # over: nobody drives it
    assert f"the looptui service (pid {pid}) is driving no run" in run_cli(repo, "status").stdout

    again = run_cli(repo, "attach", run_id, timeout=QUICK)  # ended: prints and exits at once
    assert again.code == 0 and "turn 1 done" in again.stdout, again
    assert f"run {run_id}: succeeded" in again.stdout


def test_attach_exits_non_zero_when_the_run_failed(tmp_path: Path) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo, "never")
    turn_started(control, 1)
    attach = Command(repo, "attach", run_id)
    try:
        attach.wait_for_line("turn 1 started")
        release(control)
        result = attach.finish()
    finally:
        attach.kill()
    assert result.code == 1, result
    assert f"run {run_id}: failed" in result.stdout
    again = run_cli(repo, "attach", run_id, timeout=QUICK)
    assert again.code == 1 and f"run {run_id}: failed" in again.stdout, again


def test_status_without_a_service_says_so_and_starts_none(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    table = run_cli(repo, "status")
    assert table.code == 0, table.stderr
    assert "no looptui service runs for this repository" in table.stdout
    assert runs(repo) == {}
    assert service_info(repo) == {"running": False}  # status did not start one


# -- stop, resume, feedback ----------------------------------------------------------------


def test_stop_then_resume_redoes_the_cut_iteration_in_the_same_worktree(tmp_path: Path) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)

    stopped = run_cli(repo, "stop", run_id)
    assert stopped.code == 0, stopped.stderr
    assert stopped.stdout.strip().splitlines() == [
        f"stopped run {run_id} (cancelled); resume it with: looptui resume {run_id}"
    ]
    run = runs(repo)[run_id]
    assert run["status"] == "cancelled" and run["driven"] is False
    worktree = Path(run["worktree"])
    assert worktree.is_dir()  # kept
    one_line(run_cli(repo, "stop", run_id), run_id, "cancelled")  # not going: refused

    resumed = run_cli(repo, "resume", run_id)
    assert resumed.code == 0, resumed.stderr
    assert f"resumed run {run_id} at iteration 1 of 3" in resumed.stdout  # the cut one again
    turn_started(control, 2)
    assert runs(repo)[run_id]["driven"] is True
    release(control)
    final = run_cli(repo, "attach", run_id)
    assert final.code == 0, final
    run = runs(repo)[run_id]
    assert (run["status"], run["iterations"], run["worktree"]) == ("succeeded", 1, str(worktree))
    assert list(stored_prompts(repo, run_id)) == [1]
    one_line(run_cli(repo, "stop", run_id), "succeeded")


def test_feedback_continues_a_succeeded_run_with_the_feedback_leading_its_prompt(
    tmp_path: Path,
) -> None:
    repo, control = held_repo(tmp_path)
    release(control)
    run_id = detach(repo)
    assert run_cli(repo, "attach", run_id).code == 0
    assert runs(repo)[run_id]["max_iterations"] == 3

    text = "Also reject negative widths."
    given = run_cli(repo, "feedback", run_id, text)
    assert given.code == 0, given.stderr
    assert f"continued run {run_id} at iteration 2 of 4" in given.stdout
    final = run_cli(repo, "attach", run_id)
    assert final.code == 0, final

    run = runs(repo)[run_id]
    assert (run["status"], run["iterations"], run["max_iterations"]) == ("succeeded", 2, 4)
    prompts = stored_prompts(repo, run_id)
    assert text not in prompts[1]
    assert (control / "turn-2.prompt").read_text() == prompts[2]  # what the agent was given
    assert prompts[2].startswith(
        f"## Feedback from the human reviewing your work (address it first)\n- {text}\n"
    )
    assert "Make the tests pass." in prompts[2]
    assert_feedback_leads(prompts[2], text)


def test_feedback_is_the_first_section_of_the_next_prompt(tmp_path: Path) -> None:
    repo, control = held_repo(tmp_path)
    release(control)
    run_id = detach(repo)
    assert run_cli(repo, "attach", run_id).code == 0
    text = "Also reject negative widths."
    assert run_cli(repo, "feedback", run_id, text).code == 0
    assert run_cli(repo, "attach", run_id).code == 0
    assert_feedback_leads(stored_prompts(repo, run_id)[2], text, strict=True)


def assert_feedback_leads(prompt: str, text: str, strict: bool = False) -> None:
    """The feedback comes before what the run learned (checks, verdicts); `strict`: right
    after the goal, before the notes of earlier iterations too."""
    sections = [part.splitlines()[0] for part in prompt.split("\n\n") if part.startswith("## ")]
    feedback = sections.index("## Feedback from the human reviewing your work (address it first)")
    later = {"## Failing checks", "## Next steps from the last verdict"}
    assert not later & set(sections[:feedback]), sections
    if strict:
        assert feedback == 0 and "did not reach the goal" not in prompt, prompt


# -- run in the foreground -----------------------------------------------------------------


def test_run_in_the_foreground_exits_0_only_when_the_goal_was_met(tmp_path: Path) -> None:
    repo, control = held_repo(tmp_path)
    release(control)
    met = run_cli(repo, "run", "fix")
    assert met.code == 0, met
    assert "turn 1 done" in met.stdout and "succeeded" in met.stdout
    missed = run_cli(repo, "run", "never")
    assert missed.code == 1, missed
    assert "failed" in missed.stdout
    assert {run["status"] for run in runs(repo).values()} == {"succeeded", "failed"}
    assert service_info(repo)["running"]  # they went through the service


def test_ctrl_c_stops_a_foreground_run_and_says_so(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    result = Command(repo, "run", "fix").interrupt_after("turn 1 started")
    assert result.code == 130, result
    assert "stopping" in result.stdout and "cancelled" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    [run] = runs(repo).values()
    assert run["status"] == "cancelled" and Path(run["worktree"]).is_dir()


# -- service start, status, stop, restart --------------------------------------------------


def test_service_verbs_and_a_stop_that_interrupts_runs_the_next_service_resumes(
    tmp_path: Path,
) -> None:
    repo, control = held_repo(tmp_path)
    assert service_info(repo) == {"running": False}
    started = run_cli(repo, "service", "start")
    assert started.code == 0 and "started the looptui service (pid" in started.stdout, started
    again = run_cli(repo, "service", "start")
    assert again.code == 0 and "already runs" in again.stdout, again

    run_id = detach(repo)
    turn_started(control, 1)
    info = service_info(repo)
    assert info["active_runs"] == [run_id] and info["version"] == looptui.__version__
    assert Path(info["socket"]).exists() and info["uptime"] >= 0
    text = run_cli(repo, "service", "status")
    assert text.code == 0
    assert f"looptui service pid {info['pid']}, looptui {info['version']}, up " in text.stdout
    assert f"socket {info['socket']}" in text.stdout
    assert f"driving 1 run: {run_id}" in text.stdout

    stopped = run_cli(repo, "service", "stop")
    assert stopped.code == 0 and f"stopped the service (pid {info['pid']})" in stopped.stdout
    assert exited(info["pid"], WAIT), "the stopped service's process did not end"
    assert runs(repo)[run_id]["status"] == "interrupted"
    assert run_cli(repo, "service", "status").code == 1

    release(control)
    assert run_cli(repo, "service", "start").code == 0  # resumes the interrupted run
    final = run_cli(repo, "attach", run_id)
    assert final.code == 0, final
    assert runs(repo)[run_id]["status"] == "succeeded"

    restarted = run_cli(repo, "service", "restart")
    new_pid = service_info(repo)["pid"]
    assert restarted.code == 0 and f"runs as pid {new_pid} (was pid " in restarted.stdout
    assert run_cli(repo, "service", "stop").code == 0
    assert run_cli(repo, "service", "stop").stdout.strip() == "no looptui service was running"


def test_sigterm_to_the_service_interrupts_its_runs_and_the_next_resumes_them(
    tmp_path: Path,
) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)
    pid = service_info(repo)["pid"]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not service_info(repo)["running"], "the service to stop")
    assert runs(repo)[run_id]["status"] == "interrupted"
    release(control)
    final = run_cli(repo, "attach", run_id)  # starts the next service, which resumes it
    assert final.code == 0, final
    assert service_info(repo)["pid"] != pid
    assert runs(repo)[run_id]["status"] == "succeeded"


def test_after_a_kill_the_next_status_starts_the_service_which_resumes_the_run(
    tmp_path: Path,
) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)
    killed = kill_service(repo)

    shown = run_cli(repo, "status")  # the next client after the crash
    assert shown.code == 0, shown
    fresh = service_info(repo)
    assert fresh["running"] and fresh["pid"] != killed["pid"]
    assert (
        f"started the looptui service (pid {fresh['pid']}): it resumes 1 run a crash "
        f"interrupted: {run_id}"
    ) in shown.stdout
    turn_started(control, 2)  # the cut iteration, again
    release(control)
    final = run_cli(repo, "attach", run_id)
    assert final.code == 0, final
    assert runs(repo)[run_id]["status"] == "succeeded"
    # the history says why the run was interrupted, as its record did
    history = run_cli(repo, "log", run_id)
    assert "interrupted: its looptui process ended before the run finished" in history.stdout


def test_status_after_a_deliberate_stop_starts_no_service(tmp_path: Path) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)
    assert run_cli(repo, "service", "stop").code == 0
    shown = run_cli(repo, "status")
    assert shown.code == 0 and "no looptui service runs" in shown.stdout, shown
    assert service_info(repo) == {"running": False}  # it waits for the next start
    assert runs(repo)[run_id]["status"] == "interrupted"


@pytest.mark.parametrize("command", ["attach", "stop", "resume", "merge", "discard"])
def test_a_run_id_no_run_has_is_refused_without_starting_a_service(
    tmp_path: Path, command: str
) -> None:
    repo, _ = held_repo(tmp_path)
    one_line(run_cli(repo, command, "nope"), "no run matches 'nope'")
    assert service_info(repo) == {"running": False}


@pytest.mark.parametrize("detached", [False, True])
def test_an_unknown_loop_is_refused_without_starting_a_service(
    tmp_path: Path, detached: bool
) -> None:
    repo, _ = held_repo(tmp_path)
    args = ("run", "nosuchloop", *(["--detach"] if detached else []))
    one_line(run_cli(repo, *args), "unknown loop 'nosuchloop'", "fix")
    assert service_info(repo) == {"running": False}


@pytest.mark.parametrize("how", ["settings", "flag"])
def test_with_the_service_off_runs_live_in_the_command(tmp_path: Path, how: str) -> None:
    """`settings.service = false` in looptui.toml, or `looptui --no-service`: the engine runs
    in the command's own process, so nothing can be detached, and no service starts."""
    repo, control = held_repo(tmp_path)
    flags: tuple[str, ...] = ()
    if how == "settings":
        path = repo / "looptui.toml"
        config = tomllib.loads(path.read_text())
        config.setdefault("settings", {})["service"] = False
        path.write_text(tomli_w.dumps(config))
        git(repo, "commit", "--quiet", "-am", "no service")
    else:
        flags = ("--no-service",)
    one_line(run_cli(repo, *flags, "run", "fix", "--detach"), "--detach", "service")
    release(control)
    met = run_cli(repo, *flags, "run", "fix")
    assert met.code == 0 and "succeeded" in met.stdout, met
    assert service_info(repo) == {"running": False}
    assert [run["driven"] for run in runs(repo).values()] == [False]


# -- faults --------------------------------------------------------------------------------


def kill_service(repo: Path, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """SIGKILL the running service and wait until it has ended, every thread of it (only
    the last one closes its socket and lock); returns what it said of itself."""
    info = info or service_info(repo)
    psutil.Process(info["pid"]).kill()
    assert exited(info["pid"], WAIT), "the killed service's process did not end"
    return info


def descriptors(pid: int) -> set[str]:
    """What the process's open descriptors refer to (`socket:[inode]`, paths...)."""
    fds = Path(f"/proc/{pid}/fd")
    return {os.readlink(fds / fd) for fd in os.listdir(fds)}


def listener_inode(path: str) -> str:
    """The inode of the listening Unix socket bound at `path` (__SO_ACCEPTCON in its flags)."""
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
            return fields[6]
    raise AssertionError(f"nothing listens at {path}")


def test_agents_of_the_service_hold_neither_its_socket_nor_its_lock(tmp_path: Path) -> None:
    # Were they inherited, a killed service's socket would go on accepting connections (into
    # a backlog nobody reads) and its lock stay held, for as long as its agents live.
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)
    info = service_info(repo)
    service = psutil.Process(info["pid"])
    agents = [child for child in service.children(True) if "tools/held.py" in child.cmdline()]
    assert len(agents) == 1, agents
    listener = f"socket:[{listener_inode(info['socket'])}]"
    lock = {target for target in descriptors(service.pid) if target.endswith(".lock")}
    assert listener in descriptors(service.pid) and len(lock) == 1  # the service holds both
    assert not descriptors(agents[0].pid) & {listener, *lock}
    release(control)
    final = run_cli(repo, "attach", run_id)
    assert final.code == 0, final


def test_a_stale_socket_of_a_dead_service_is_replaced(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    assert run_cli(repo, "service", "start").code == 0
    info = kill_service(repo)
    path = Path(info["socket"])
    assert path.exists()  # the dead service left it behind
    assert not answers(path)  # nothing listens there

    assert run_cli(repo, "service", "status").code == 1  # no service: nothing answers
    result = run_cli(repo, "status")
    assert "no looptui service runs" in result.stdout
    started = run_cli(repo, "service", "start")
    assert started.code == 0 and "Traceback" not in started.stderr, started
    fresh = service_info(repo)
    assert fresh["pid"] != info["pid"] and fresh["socket"] == info["socket"]
    assert answers(path)  # the new service listens on a socket of its own there


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_a_socket_owned_by_another_user_is_refused_and_left_alone(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    assert run_cli(repo, "service", "start").code == 0
    info = service_info(repo)
    path = Path(info["socket"])
    os.chown(path, 65534, 65534)

    for args in (("run", "fix", "--detach"), ("service", "status")):
        one_line(run_cli(repo, *args), "refusing", "owned by uid 65534")
    assert "owned by uid 65534" in run_cli(repo, "status").stdout

    kill_service(repo, info)  # a dead service's socket, another user's: not cleaned up either
    one_line(run_cli(repo, "service", "start"), "refusing", "owned by uid 65534")
    assert path.stat().st_uid == 65534


async def test_a_client_of_another_version_is_refused_while_runs_are_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)
    pid = service_info(repo)["pid"]
    monkeypatch.setattr(looptui.client.connect, "__version__", "99.0.0")
    with pytest.raises(VersionMismatch) as refused:
        await open_supervisor(repo, os.environ, None)
    message = str(refused.value)
    assert "\n" not in message
    assert f"runs looptui {looptui.__version__}" in message and "this is looptui 99.0.0" in message
    assert service_info(repo)["pid"] == pid  # left alone: it drives a run
    release(control)
    assert run_cli(repo, "attach", run_id).code == 0


OLD_SERVICE = textwrap.dedent(
    """\
    import sys
    import looptui
    looptui.__version__ = "0.0.1"  # before the service's modules read it
    from looptui.cli import main
    main(["serve", "--repo", sys.argv[1]])
    """
)


async def test_an_idle_service_of_another_version_is_replaced(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    # a service of another looptui, as after an upgrade; `looptui serve` in its cmdline so
    # that teardown finds it
    old = subprocess.Popen(
        [sys.executable, "-c", OLD_SERVICE, str(repo), "serve", "--repo", str(repo)],
        cwd=repo,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        info = wait_for(
            lambda: (found := service_info(repo))["running"] and found, "the old service"
        )
        assert info["version"] == "0.0.1" and info["pid"] == old.pid
        assert "this is looptui " + looptui.__version__ in info["mismatch"]
        told = run_cli(repo, "service", "status")  # says so, and what to do
        assert told.code == 0 and "looptui service restart" in told.stdout, told
        assert f"runs looptui 0.0.1 (protocol {PROTOCOL_VERSION}), this is looptui " in (
            told.stdout
        )
        supervisor = await open_supervisor(repo, os.environ, None)
        try:
            assert isinstance(supervisor, RemoteSupervisor)
            assert supervisor.service is not None
            assert supervisor.service.version == looptui.__version__
            assert supervisor.service.pid != old.pid
            assert await supervisor.active_runs() == []
        finally:
            await supervisor.close()
        assert await asyncio.to_thread(old.wait, WAIT) == 0  # stopped cleanly
    finally:
        if old.poll() is None:
            old.kill()


def test_of_services_racing_exactly_one_keeps_running(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "looptui", "serve", "--repo", str(repo)],
            cwd=repo,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        wait_for(
            lambda: sum(racer.poll() is not None for racer in racers) == 3,
            "three of the four services to give up",
        )
        [winner] = [racer for racer in racers if racer.poll() is None]
        assert service_info(repo)["pid"] == winner.pid
        for loser in racers:
            if loser is winner:
                continue
            stdout, stderr = loser.communicate(timeout=WAIT)
            result = Result(loser.returncode, stdout, stderr)
            one_line(result, "a looptui service already runs for")
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()


def test_a_service_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    repo, _ = held_repo(tmp_path)
    store = Repository(repo).store_path
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"this is not a SQLite database " * 100)
    result = run_cli(repo, "run", "fix", "--detach")
    line = one_line(result, "looptui: ")
    assert "service" in line or "store" in line, line
    assert service_info(repo) == {"running": False}


# -- clients that go away, and a service that died ----------------------------------------


def test_a_client_that_detaches_or_vanishes_leaves_the_run_going(tmp_path: Path) -> None:
    repo, control = held_repo(tmp_path)
    run_id = detach(repo)
    turn_started(control, 1)

    result = Command(repo, "attach", run_id).interrupt_after("turn 1 started")  # detaches
    assert result.code == 0, result
    assert f"detached: run {run_id} goes on" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    run = runs(repo)[run_id]
    assert (run["status"], run["driven"]) == ("running", True)

    vanished = Command(repo, "attach", run_id)  # SIGKILL: the client just disappears
    try:
        vanished.wait_for_line("turn 1 started")
        vanished.process.kill()
        assert vanished.process.wait(WAIT) == -signal.SIGKILL
    finally:
        vanished.kill()
    run = runs(repo)[run_id]
    assert (run["status"], run["driven"]) == ("running", True)

    # had a client's going cancelled the run, it would not succeed now (nor redo turn 1)
    release(control)
    final = run_cli(repo, "attach", run_id)
    assert final.code == 0 and f"run {run_id}: succeeded" in final.stdout, final
    assert runs(repo)[run_id]["iterations"] == 1
    assert not (control / "turn-2.prompt").exists()


def test_a_zombie_service_drives_nothing_and_the_next_one_resumes_its_run(
    tmp_path: Path,
) -> None:
    repo, control = held_repo(tmp_path)
    # this test's own child: killed, it stays a zombie until the test reaps it
    old = subprocess.Popen(
        [sys.executable, "-m", "looptui.service", "serve", "--repo", str(repo)],
        cwd=repo,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: service_info(repo).get("pid") == old.pid, "the test's own service")
        run_id = detach(repo)  # driven by that service
        turn_started(control, 1)
        assert runs(repo)[run_id]["driven"] is True

        os.kill(old.pid, signal.SIGKILL)  # and no wait(): nobody reaps it
        zombie = psutil.Process(old.pid)
        wait_for(lambda: zombie.status() == psutil.STATUS_ZOMBIE, "the service to be a zombie")

        started = run_cli(repo, "service", "start")
        assert started.code == 0, started
        assert zombie.status() == psutil.STATUS_ZOMBIE  # still there, pid and all
        fresh = service_info(repo)
        assert fresh["pid"] != old.pid
        assert fresh["active_runs"] == [run_id]  # resumed before it answered
        turn_started(control, 2)  # the new service found the run interrupted and resumed it
        release(control)
        final = run_cli(repo, "attach", run_id)
        assert final.code == 0 and f"run {run_id}: succeeded" in final.stdout, final
        run = runs(repo)[run_id]
        assert (run["status"], run["iterations"]) == ("succeeded", 1)
        assert list(stored_prompts(repo, run_id)) == [1]  # the cut iteration, done again
    finally:
        if old.returncode is None:
            old.kill()  # a no-op on a zombie
        old.wait(WAIT)  # reaped
    assert old.returncode == -signal.SIGKILL
