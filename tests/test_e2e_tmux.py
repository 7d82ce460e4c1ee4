"""The real `looptui demo` in a real terminal (tmux): keys in, screen text out.

A new user's first minute: the demo's runs work, one is reviewed hunk by hunk, one hunk is
rejected, the rest merged; the app is quit and reopened on the same history.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import cli_env, git, run_cli

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"
)


class Terminal:
    """A tmux session running one command."""

    def __init__(
        self, command: str, cwd: Path, width: int, height: int, path: str | None = None
    ) -> None:
        """`path`: the PATH the command sees (default: this interpreter's bin first)."""
        self.name = f"looptui-{uuid.uuid4().hex[:8]}"
        env = cli_env() if path is None else {**cli_env(), "PATH": path}
        passed = ("PATH", "HOME", "XDG_STATE_HOME")
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in passed)
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(cwd),
            # through a shell: a command may be a line of shell (`cd … && …`)
            # COLUMNS and LINES would override the pane's size
            f"env -u COLUMNS -u LINES {exports} TERM=xterm-256color "
            f"sh -c {shlex.quote(command)}; sleep 600",
        )
        # with other sessions on the server, a detached one may take the default 80x24:
        # hold it to the size asked for
        with contextlib.suppress(subprocess.CalledProcessError):  # a tmux before 2.9
            self._tmux("set-option", "-t", self.name, "window-size", "manual")
            self._tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        # -J: a line the terminal wrapped comes back whole
        return self._tmux("capture-pane", "-p", "-J", "-t", self.name)

    def press(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", self.name, key)
            time.sleep(0.15)

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if condition(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed it; it shows:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def looptui(*args: str) -> str:
    return " ".join(shlex.quote(part) for part in (sys.executable, "-m", "looptui", *args))


@pytest.mark.usefixtures("service")  # the app starts the demo's service, as for a user
@pytest.mark.timeout(360)  # the demo is paced to be watched: about a minute of work
def test_a_new_user_reviews_and_merges_the_demo(tmp_path: Path, terminals: list[Terminal]) -> None:
    demo = tmp_path / "demo"
    first = Terminal(looptui("demo", str(demo)), tmp_path, 160, 50)  # paced to be watched
    terminals.append(first)
    # at least three runs at work: quit while they are, and they go on
    first.wait_for(lambda s: s.count("● running") + s.count("◌ queued") >= 3, timeout=30)
    first.press("q")
    first.wait_for(lambda s: "still going. They go on in the looptui service" in s)
    first.press("q")
    said = first.wait_for(lambda s: "the demo repository stays in" in s)
    assert "go on in the looptui service (pid" in said, said
    status = run_cli(demo, "status")
    assert status.code == 0 and re.search(r"is driving [1-9]\d* run", status.stdout), status

    # reopened with the command it printed, as written, in a shell without the venv on PATH
    # (as the quick start leaves it), the app follows them to their end
    hint = said.split("open it again with: ", 1)[1].splitlines()[0].strip()
    term = Terminal(hint, tmp_path, 160, 50, path="/usr/bin:/bin")
    terminals.append(term)
    screen = term.wait_for(lambda s: "0 active" in s and "need you" in s, timeout=120)
    assert "succeeded" in screen and "stalled" in screen, screen
    ended = [run["status"] for run in json.loads(run_cli(demo, "status", "--json").stdout)]
    assert ended.count("succeeded") >= 3 and "stalled" in ended, ended

    term.press("r")

    def queue_rows(screen: str) -> list[str]:
        return [line for line in screen.splitlines() if {"review", "decide"} & set(line.split())]

    rows = queue_rows(term.wait_for(lambda s: "Needs you (" in s and len(queue_rows(s)) >= 4))
    position = next(i for i, line in enumerate(rows) if "fix-add" in line)
    term.press(*["Down"] * position, "Enter")
    term.wait_for(lambda s: "Review fix-add" in s and "unit 1/2" in s)
    term.press("a")  # the fix
    term.wait_for(lambda s: "unit 2/2" in s and "print('debug" in s)
    term.press("x")  # the stray debug line
    term.wait_for(lambda s: "1 accepted" in s and "1 rejected" in s)
    term.press("m")
    term.wait_for(lambda s: "merges cleanly" in s)
    term.press("y")
    term.wait_for(lambda s: "into main" in s and "merged" in s)

    arith = (demo / "calc/arith.py").read_text()
    assert "return a + b" in arith and "debug" not in arith
    assert git(demo, "status", "--porcelain") == ""

    term.press("q")  # nothing is going any more: no dialog

    again = Terminal(looptui(), demo, 80, 24)
    terminals.append(again)
    screen = again.wait_for(lambda s: "4 runs" in s)
    assert "merged" in screen
