"""Shared fixtures: real temporary git repositories and the real `looptui` command."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomli_w

PYTHON_BIN = str(Path(sys.executable).parent)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "user@example.invalid",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "user@example.invalid",
}


def git(repo: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **GIT_IDENTITY},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def cli_env() -> dict[str, str]:
    """The environment `looptui` runs with: this interpreter's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PATH"] = PYTHON_BIN + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    cwd: Path, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
) -> Result:
    """Run the real `looptui` command as a user would."""
    completed = subprocess.run(
        [sys.executable, "-m", "looptui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else cli_env(),
        stdin=subprocess.DEVNULL,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


BUGGY_PACKAGE = {
    ".gitignore": "__pycache__/\n.pytest_cache/\n",
    "shapes/__init__.py": "",
    "shapes/area.py": "def rectangle(width, height):\n    return width + height\n",
    "tests/test_area.py": textwrap.dedent(
        """\
        from shapes.area import rectangle


        def test_rectangle():
            assert rectangle(3, 4) == 12
        """
    ),
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
}

FIXER = textwrap.dedent(
    """\
    import pathlib, sys
    print("reading the prompt from", sys.argv[1].rsplit("/", 1)[-1])
    path = pathlib.Path("shapes/area.py")
    path.write_text(path.read_text().replace("width + height", "width * height"))
    print("fixed rectangle()")
    """
)


def make_repo(root: Path, files: Mapping[str, str] | None = None, config: Any = None) -> Path:
    """A committed repository holding `files` (the buggy package by default) and a config."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    for relative, text in (files if files is not None else BUGGY_PACKAGE).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if config is not None:
        (root / "looptui.toml").write_text(tomli_w.dumps(config))
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


def fixer_config(**loop_overrides: Any) -> dict[str, Any]:
    """A config whose `fix` loop runs a command agent that fixes `rectangle()`."""
    loop = {
        "prompt": "Make the tests pass.",
        "agent": "fixer",
        "checks": [{"name": "tests", "run": "python -m pytest -q -p no:cacheprovider"}],
        "max_iterations": 3,
    }
    loop.update(loop_overrides)
    return {
        "agents": {
            "fixer": {"kind": "command", "command": ["python", "tools/fix.py", "{prompt_file}"]},
            "idle": {"kind": "command", "command": ["python", "-c", "print('thinking...')"]},
        },
        "loops": {"fix": loop},
    }


@pytest.fixture(autouse=True)
def private_worktrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs' worktrees live under $XDG_STATE_HOME (see `worktrees_home`): each test its own,
    so that none is left in the machine's home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def engine_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands drive runs in their own process unless a test asks for the service (the
    `service` fixture): most tests are about what a run does, not who drives it."""
    monkeypatch.setenv("LOOPTUI_NO_SERVICE", "1")


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Commands go through the repository's service, as for a user; every service started
    for a repository under this test's directory is stopped (SIGKILL) when it ends."""
    monkeypatch.delenv("LOOPTUI_NO_SERVICE", raising=False)
    yield
    kill_services(tmp_path)


def kill_services(root: Path) -> None:
    """SIGKILL every `looptui serve` serving a repository under `root`, and what they left
    working there (agents and checks live in process groups of their own, so a killed
    service leaves them behind, as a crash would), and wait for them."""
    victims = []
    top = root.resolve()
    for process in psutil.process_iter(["cmdline", "cwd"]):
        if process.pid == os.getpid():
            continue
        cmdline = process.info.get("cmdline") or []
        cwd = process.info.get("cwd")
        if "serve" in cmdline and "--repo" in cmdline:
            repo = cmdline[cmdline.index("--repo") + 1] if cmdline[-1] != "--repo" else ""
            if repo and Path(repo).resolve().is_relative_to(top):
                victims.append(process)
        elif cwd and Path(cwd).is_relative_to(top):
            victims.append(process)
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(victims, timeout=10)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The buggy package with a `fix` loop whose agent repairs it."""
    files = {**BUGGY_PACKAGE, "tools/fix.py": FIXER}
    return make_repo(tmp_path / "repo", files, fixer_config())


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli
