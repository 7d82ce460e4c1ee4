"""The clean gate: "done" is decided on a clean checkout of the commit that would merge.

Through the real `looptui run`: command agents that cheat with files git ignores, honest ones,
a loop that opts out, a goal that already held, and setup commands.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import git, make_repo, run_cli

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
# The check puts build/ first on the path, as a project with generated modules would; git
# ignores build/, so a module written there never merges.
CHECK = "PYTHONPATH=build python -P -m pytest -q -p no:cacheprovider --import-mode=append"

CHEAT = """\
import pathlib
pathlib.Path("build").mkdir(exist_ok=True)
pathlib.Path("build/calc.py").write_text("def add(a, b):\\n    return a + b\\n")
print("fixed")
"""
HONEST = """\
import pathlib
path = pathlib.Path("calc.py")
path.write_text(path.read_text().replace("a - b", "a + b"))
print("fixed")
"""
IDLE = "print('nothing to do')\n"


def project(tmp_path: Path, agent: str, **loop: Any) -> Path:
    config = {
        "agents": {"agent": {"kind": "command", "command": ["python", "tools/agent.py"]}},
        "loops": {
            "fix": {
                "prompt": "Make the tests pass.",
                "agent": "agent",
                "checks": [{"name": "tests", "run": CHECK}],
                "max_iterations": 1,
                **loop,
            }
        },
    }
    files = {
        "calc.py": CALC,
        "test_calc.py": TEST,
        ".gitignore": "build/\n__pycache__/\n.venv-demo/\n",
        "tools/agent.py": agent,
    }
    return make_repo(tmp_path / "repo", files, config)


def events(repo: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's stored events, read straight from the store."""
    with sqlite3.connect(repo / ".git/looptui/store.db") as db:
        rows = db.execute("SELECT kind, data FROM events WHERE run_id = ? ORDER BY id", (run_id,))
        return [{"kind": kind, "data": json.loads(data)} for kind, data in rows]


def only_run(repo: Path) -> dict[str, Any]:
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    return run


def test_an_ignored_file_that_makes_the_checks_pass_is_not_done(tmp_path: Path) -> None:
    repo = project(tmp_path, CHEAT)

    result = run_cli(repo, "run", "fix")

    assert result.code == 1, result.stdout + result.stderr
    run = only_run(repo)
    assert run["status"] == "failed"
    assert run["last_verdict"]["done"] is False
    log = events(repo, run["id"])
    checks = {e["data"]["name"]: e["data"]["passed"] for e in log if e["kind"] == "check"}
    assert checks == {"tests": True, "tests (clean checkout)": False}
    [gate] = [e["data"] for e in log if e["kind"] == "gate"]
    assert gate["passed"] is False and gate["ignored"] == ["build/"]
    [verdict] = [e["data"] for e in log if e["kind"] == "verdict"]
    assert "failed on a clean checkout" in verdict["reasons"][0]
    assert "build/" in verdict["reasons"][0]
    merged = run_cli(repo, "merge", run["id"])
    assert merged.code != 0
    assert "a - b" in (repo / "calc.py").read_text()


def test_an_honest_fix_passes_the_gate_in_one_iteration(tmp_path: Path) -> None:
    repo = project(tmp_path, HONEST)

    result = run_cli(repo, "run", "fix")

    assert result.code == 0, result.stdout + result.stderr
    run = only_run(repo)
    assert run["status"] == "succeeded" and run["iterations"] == 1
    assert "judged by its checks alone" in result.stdout  # no evaluator read the change
    log = events(repo, run["id"])
    [gate] = [e["data"] for e in log if e["kind"] == "gate"]
    assert gate["passed"] is True and gate["commit"] == run["head_commit"]
    assert [e["data"]["passed"] for e in log if e["kind"] == "check"] == [True, True]


def test_a_goal_that_already_held_ends_unchanged_and_has_nothing_to_merge(
    tmp_path: Path,
) -> None:
    repo = project(tmp_path, IDLE)
    (repo / "calc.py").write_text(CALC.replace("a - b", "a + b"))
    git(repo, "commit", "--quiet", "-am", "already fixed")

    result = run_cli(repo, "run", "fix")

    assert result.code == 0, result.stdout + result.stderr
    run = only_run(repo)
    assert run["status"] == "unchanged"
    assert "already holds on the base commit" in run["error"]
    assert "unchanged" in result.stdout
    table = run_cli(repo, "status")
    assert table.code == 0 and "unchanged" in table.stdout, table.stderr
    merged = run_cli(repo, "merge", run["id"])
    assert merged.code != 0 and "changed nothing" in merged.stderr


def test_every_status_has_a_look_everywhere_it_is_shown() -> None:
    from looptui.console import STATUS_ROLE, STATUS_STYLE
    from looptui.engine.models import RunStatus
    from looptui.tui.widgets.run_card import STATUS_LOOK, STATUS_MARK

    for table in (STATUS_STYLE, STATUS_ROLE, STATUS_MARK, STATUS_LOOK):
        assert set(table) == set(RunStatus)


def test_without_the_clean_gate_an_ignored_file_cheat_is_still_no_change(
    tmp_path: Path,
) -> None:
    """The opt-out trusts the worktree; even so, an empty diff never waits for review."""
    repo = project(tmp_path, CHEAT, clean_gate=False)

    result = run_cli(repo, "run", "fix")

    run = only_run(repo)
    assert run["status"] == "unchanged", result.stdout + result.stderr
    assert "clean gate is off" in run["error"]
    assert not [e for e in events(repo, run["id"]) if e["kind"] == "gate"]


def test_setup_prepares_the_clean_checkout_and_what_it_made_is_kept(tmp_path: Path) -> None:
    """The check needs a module that only setup generates (as `npm ci` fetches packages)."""
    setup = (
        "mkdir -p .venv-demo && echo x >> .venv-demo/runs && "
        "python -c \"open('.venv-demo/helper.py','w').write('VALUE = 4\\n')\""
    )
    check = "PYTHONPATH=.venv-demo python -c 'import helper; assert helper.VALUE == 4'"
    repo = project(tmp_path, HONEST, setup=[setup], checks=[{"name": "needs-setup", "run": check}])
    # the agent's worktree gets no setup: give it the module the check needs
    (repo / "tools/agent.py").write_text(
        HONEST + "import os\nos.makedirs('.venv-demo', exist_ok=True)\n"
        "open('.venv-demo/helper.py', 'w').write('VALUE = 4\\n')\n"
    )
    git(repo, "commit", "--quiet", "-am", "agent prepares its own worktree")

    first = run_cli(repo, "run", "fix")
    second = run_cli(repo, "run", "fix")

    assert first.code == 0 and second.code == 0, first.stdout + second.stdout
    [slot] = [
        Path(line.removeprefix("worktree "))
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ") and "/clean/" in line
    ]
    # setup ran on each use of the one checkout (the base's tests counted once, then each
    # run's commit), and what it made the first time was kept
    assert (slot / ".venv-demo/runs").read_text() == "x\nx\nx\n"
    log = events(repo, only_run_ids(repo)[0])
    names = [e["data"]["name"] for e in log if e["kind"] == "check"]
    assert names == ["needs-setup", "setup 1", "needs-setup (clean checkout)"]


def test_a_failing_setup_is_not_done_and_says_which_command(tmp_path: Path) -> None:
    repo = project(tmp_path, HONEST, setup=["echo preparing; exit 3"])

    result = run_cli(repo, "run", "fix")

    assert result.code == 1
    run = only_run(repo)
    [verdict] = [e["data"] for e in events(repo, run["id"]) if e["kind"] == "verdict"]
    assert "`echo preparing; exit 3` failed on a clean checkout" in verdict["reasons"][0]


def only_run_ids(repo: Path) -> list[str]:
    return [run["id"] for run in json.loads(run_cli(repo, "status", "--json").stdout)]


def test_an_ignored_file_a_run_start_hook_wrote_is_not_the_agents(tmp_path: Path) -> None:
    hook = "mkdir -p build && echo from-the-hook > build/hook.txt"
    repo = project(tmp_path, HONEST, hooks={"run_start": hook})

    result = run_cli(repo, "run", "fix")

    assert result.code == 0, result.stdout + result.stderr
    run = only_run(repo)
    [gate] = [e["data"] for e in events(repo, run["id"]) if e["kind"] == "gate"]
    assert gate["passed"] is True and gate["ignored"] == []
