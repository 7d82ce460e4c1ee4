"""The real `looptui demo` in a real terminal (tmux): keys in, screen text out.

A new user's first minute: the demo's runs work, one is reviewed, its debugging line left
out in line mode and the rest merged; the app is quit and reopened on the same history.
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
        # PYTHONPATH too: the command runs the looptui under test (a worktree's), not
        # whichever one the interpreter has installed
        passed = ("PATH", "HOME", "XDG_STATE_HOME", "PYTHONPATH")
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


def running(screen: str) -> int:
    """How many cards say their run is at work."""
    return screen.count("● running")


def waiting(screen: str) -> int:
    """How many runs the grid's title says need you."""
    found = re.search(r"(\d+) needs? you", screen)
    return int(found.group(1)) if found else 0


def pointed(screen: str) -> str:
    """The diff row under line mode's cursor (`▶`); "" when there is none."""
    return next((row for row in screen.splitlines() if "▶" in row), "")


def pointed_hunk(screen: str) -> list[str]:
    """The rows of the hunk that holds line mode's cursor: from its `@@` header to the next
    hunk's or file's."""
    rows = screen.splitlines()
    at = next(i for i, row in enumerate(rows) if "▶" in row)
    top = next(i for i in range(at, -1, -1) if "@@ " in rows[i])
    bottom = next(
        (i for i in range(at + 1, len(rows)) if "@@ " in rows[i] or "(modified" in rows[i]),
        len(rows),
    )
    return rows[top:bottom]


def accepted(screen: str) -> int:
    """The review title's count of accepted hunks."""
    found = re.search(r"(\d+) accepted", screen)
    return int(found.group(1)) if found else -1


def left_out(screen: str) -> int:
    """What the review title says is left out: rejected hunks, and lines left out of
    accepted ones ("1 accepted (2 lines left out)  1 rejected")."""
    hunks = re.search(r"(\d+) rejected", screen)
    lines = re.search(r"\((\d+) lines? left out\)", screen)
    return int(hunks.group(1)) + int(lines.group(1) if lines else 0) if hunks else -1


DEBUG = "print('debug"  # the stray line fix-add slips into its fix's hunk


def leave_out_the_debug_line(term: Terminal) -> list[str]:
    """In the review on screen, by keys and by what the screen shows: take each hunk whole
    until line mode's cursor lands in the one with the debugging line, move the cursor onto
    that line and leave it out, then back to hunks. The other hunks stay as they are. The
    rows of the hunk that held the line, as line mode showed them."""
    for _ in range(10):  # the demo's run has a couple of hunks; a bound, not a count
        term.press("Enter")
        screen = term.wait_for(lambda s: "line mode" in s and bool(pointed(s)))
        hunk = pointed_hunk(screen)
        if any(DEBUG in row for row in hunk):
            break
        term.press("Escape")
        screen = term.wait_for(lambda s: "line mode" not in s)
        taken = accepted(screen)
        term.press("a")  # a hunk of the fix: taken whole, and on to the next
        term.wait_for(lambda s, taken=taken: accepted(s) == taken + 1)
    else:
        raise AssertionError(f"no hunk holds the debugging line:\n{term.screen()}")
    for _ in range(len(hunk)):
        row = pointed(term.screen())
        if DEBUG in row:
            break
        term.press("j")
        term.wait_for(lambda s, row=row: pointed(s) not in ("", row))
    assert DEBUG in pointed(term.screen()), term.screen()
    before = left_out(term.screen())
    term.press("Space")
    term.wait_for(lambda s: left_out(s) == before + 1 and DEBUG in pointed(s))
    term.press("Escape")
    term.wait_for(lambda s: "line mode" not in s and not pointed(s))
    return hunk


@pytest.mark.usefixtures("service")  # the app starts the demo's service, as for a user
@pytest.mark.timeout(360)  # the demo is paced to be watched: about a minute of work
def test_a_new_user_reviews_and_merges_the_demo(tmp_path: Path, terminals: list[Terminal]) -> None:
    demo = tmp_path / "demo"
    first = Terminal(looptui("demo", str(demo)), tmp_path, 160, 50)  # paced to be watched
    terminals.append(first)
    # the runs start: from then on, at least three visibly at work ten seconds later
    first.wait_for(lambda s: running(s) >= 1, timeout=60)
    started = time.monotonic()
    first.wait_for(lambda s: time.monotonic() - started >= 10 and running(s) >= 3, timeout=30)
    # quit while they work, and they go on
    first.press("q")
    first.wait_for(lambda s: "still going. They go on in the looptui service" in s)
    first.press("q")
    said = first.wait_for(lambda s: "the demo repository stays in" in s)
    assert "go on in the looptui service (pid" in said, said
    status = run_cli(demo, "status")
    assert status.code == 0 and re.search(r"is driving [1-9]\d* run", status.stdout), status

    # reopened with the command it printed, as written, in a shell without the venv on PATH
    # (as the quick start leaves it), the app follows them: one needs review within the
    # minute, and then all come to their end
    hint = said.split("open it again with: ", 1)[1].splitlines()[0].strip()
    term = Terminal(hint, tmp_path, 160, 50, path="/usr/bin:/bin")
    terminals.append(term)
    term.wait_for(lambda s: waiting(s) >= 1, timeout=max(1, started + 60 - time.monotonic()))
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
    screen = term.wait_for(lambda s: "Review fix-add" in s and "unit 1/" in s)
    branch = re.search(r"branch (\S+)", screen)
    assert branch is not None, screen
    path = "calc/arith.py"
    before = git(demo, "show", f"main:{path}")
    ran = git(demo, "show", f"{branch.group(1)}:{path}")  # the run's version, gone once merged
    lines = ran.splitlines(keepends=True)
    assert sum(DEBUG in line for line in lines) == 1, ran
    # exactly what was accepted: the run's version without the debugging line (which the
    # whole hunk, merged, would bring along)
    expected = "".join(line for line in lines if DEBUG not in line)
    assert expected not in (ran, before), ran

    hunk = leave_out_the_debug_line(term)
    assert any("return a + b" in row for row in hunk), hunk  # inside the fix's hunk
    term.press("m")
    term.wait_for(lambda s: "merges cleanly" in s)
    term.press("y")
    term.wait_for(lambda s: "into main" in s and "merged" in s)

    assert git(demo, "show", f"main:{path}") == expected
    assert (demo / path).read_text() == expected  # the checkout the user is on, too
    assert git(demo, "status", "--porcelain") == ""

    term.press("q")  # nothing is going any more: no dialog

    again = Terminal(looptui(), demo, 80, 24)
    terminals.append(again)
    screen = again.wait_for(lambda s: "4 runs" in s)
    assert "merged" in screen
