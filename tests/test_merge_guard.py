"""Nothing false lands: the merge guard (the last verdict must be done), merges refused while
git is busy with the base branch, concurrent merges, and file/directory clashes."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import Result, cli_env, git, make_repo, run_cli
from looptui.engine import Engine
from looptui.engine.models import Flag, Verdict
from looptui.engine.workspace import Repository

PASS = "python -c \"print('ok')\""
FAIL = "python -c \"import sys; print('1 failed'); sys.exit(1)\""


def writer(path: str, text: str) -> list[str]:
    """A command agent that writes `text` to `path` in its worktree."""
    code = (
        f"import pathlib; p = pathlib.Path({path!r}); "
        f"p.parent.mkdir(parents=True, exist_ok=True); p.write_text({text!r})"
    )
    return ["python", "-c", code]


def config(loops: dict[str, tuple[str, str]], check: str = PASS) -> dict[str, Any]:
    """One loop per entry, named as it, whose agent writes (path, text) in one iteration."""
    return {
        "agents": {
            name: {"kind": "command", "command": writer(*out)} for name, out in loops.items()
        },
        "loops": {
            name: {
                "prompt": f"Write {out[0]}.",
                "agent": name,
                "checks": [{"name": "tests", "run": check}],
                "max_iterations": 1,
            }
            for name, out in loops.items()
        },
    }


def repo_of(tmp_path: Path, loops: dict[str, tuple[str, str]], check: str = PASS) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n"}, config(loops, check))


def start(repo: Path, loop: str) -> dict[str, Any]:
    """Run `loop` to its end with the real command; its record as `status --json` has it."""
    run_cli(repo, "run", loop)
    result = run_cli(repo, "status", "--json")
    assert result.code == 0, result.stderr
    [run] = [run for run in json.loads(result.stdout) if run["loop"] == loop]
    return dict(run)


def state(repo: Path) -> dict[str, str]:
    """What a refused merge must leave alone: refs, HEAD, status and every file's bytes."""
    files = {
        str(path.relative_to(repo)): path.read_bytes().hex()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    }
    return {
        "refs": git(repo, "for-each-ref"),
        "head": git(repo, "rev-parse", "HEAD", check=False),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "files": json.dumps(files),
    }


def refused(result: Result, *words: str) -> str:
    """Exit non-zero with one `looptui:` line holding every word, and no traceback."""
    assert result.code != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("looptui: warning:")  # about other things
    ]
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("looptui: "), line
    assert "git merge failed" not in line and "git update-ref failed" not in line, line
    for word in words:
        assert word in line, (word, line)
    return line


# -- the guard ------------------------------------------------------------------------------


def test_a_run_whose_checks_fail_is_refused_and_lands_with_force(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"feature": ("feature.txt", "half done\n")}, check=FAIL)
    run = start(repo, "feature")
    assert run["status"] == "failed"
    before = state(repo)

    line = refused(run_cli(repo, "merge", run["id"]), "--force")
    assert line == (
        f"looptui: run {run['id']} is failed (check tests failed with exit 1); "
        "merge it anyway with --force"
    )
    assert refused(run_cli(repo, "merge", "--squash", run["id"])) == line
    assert state(repo) == before
    assert Path(run["worktree"]).is_dir()

    forced = run_cli(repo, "merge", "--force", run["id"])
    assert forced.code == 0, forced.stderr
    assert (repo / "feature.txt").read_text() == "half done\n"


def test_a_succeeded_status_without_a_done_verdict_is_refused(tmp_path: Path) -> None:
    """A run from an older looptui may be 'succeeded' on less: the verdict decides."""
    repo = repo_of(tmp_path, {"feature": ("feature.txt", "half done\n")}, check=FAIL)
    run = start(repo, "feature")
    with sqlite3.connect(Repository(repo).store_path) as db:
        db.execute("UPDATE runs SET status = 'succeeded' WHERE id = ?", (run["id"],))
    before = state(repo)

    refused(
        run_cli(repo, "merge", run["id"]),
        f"run {run['id']} is succeeded but its last verdict is not done",
        "(check tests failed with exit 1)",
    )
    assert state(repo) == before


async def test_a_flagged_verdict_is_refused_and_named(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"feature": ("feature.txt", "done\n")})
    run = start(repo, "feature")
    assert run["status"] == "succeeded"
    flag = Flag("test-removed", "tests/test_x.py", 3, "a test was deleted")
    engine = await Engine.open(repo, cli_env())
    try:
        plan = await engine.preview(run["id"])
        assert plan.gate.allowed and plan.preview.clean
        verdict = Verdict(
            done=True, evaluator="checks", reasons=("check tests passed",), flags=(flag,)
        )
        await engine.store.add_verdict(run["id"], 1, verdict)
        plan = await engine.preview(run["id"])
    finally:
        await engine.close()
    assert not plan.gate.allowed and plan.gate.flags == (flag,)
    assert plan.gate.outcome == "flagged"
    before = state(repo)
    refused(
        run_cli(repo, "merge", run["id"]),
        "last verdict is flagged (tests/test_x.py:3: a test was deleted [test-removed])",
    )
    assert state(repo) == before


def test_an_unchanged_run_changed_nothing(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"same": ("README.md", "hello\n")})
    run = start(repo, "same")
    before = state(repo)
    for force in ((), ("--force",)):
        line = refused(run_cli(repo, "merge", *force, run["id"]))
        assert line == f"looptui: run {run['id']} changed nothing; there is nothing to merge"
    assert state(repo) == before


def test_a_run_whose_change_is_already_on_the_base_says_so(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"feature": ("feature.txt", "done\n")})
    run = start(repo, "feature")
    (repo / "feature.txt").write_text("done\n")
    git(repo, "add", "feature.txt")
    git(repo, "commit", "-qm", "the same by hand")
    refused(run_cli(repo, "merge", run["id"]), "main already holds its changes")


# -- git busy with the base branch ----------------------------------------------------------


def stop_a_rebase_of_main_on_a_conflict(checkout: Path) -> None:
    """In `checkout` (on main): rebase main onto a branch that changed README.md otherwise."""
    git(checkout, "branch", "topic", "main~0")
    git(checkout, "switch", "-q", "topic")
    (checkout / "README.md").write_text("topic\n")
    git(checkout, "commit", "-qam", "topic")
    git(checkout, "switch", "-q", "main")
    (checkout / "README.md").write_text("main\n")
    git(checkout, "commit", "-qam", "main")
    git(checkout, "rebase", "topic", check=False)  # stops on the conflict
    assert "UU README.md" in git(checkout, "status", "--porcelain")


@pytest.mark.parametrize("where", ["user's checkout", "another worktree"])
def test_no_merge_while_the_base_is_being_rebased(tmp_path: Path, where: str) -> None:
    repo = repo_of(tmp_path, {"feature": ("feature.txt", "done\n")})
    run = start(repo, "feature")
    checkout = repo
    if where == "another worktree":
        git(repo, "switch", "-q", "-c", "elsewhere")
        checkout = tmp_path / "other"
        git(repo, "worktree", "add", "-q", str(checkout), "main")
    stop_a_rebase_of_main_on_a_conflict(checkout)
    git_dir = Path(git(checkout, "rev-parse", "--absolute-git-dir").strip())
    assert (git_dir / "rebase-merge" / "head-name").read_text().strip() == "refs/heads/main"
    before = state(repo), state(checkout)

    refused(run_cli(repo, "merge", run["id"]), "main has a rebase in progress in", "abort")

    assert (state(repo), state(checkout)) == before
    assert (git_dir / "rebase-merge").is_dir()  # the rebase can go on
    git(checkout, "rebase", "--abort")
    assert run_cli(repo, "merge", run["id"]).code == 0


def test_no_merge_while_the_base_checkout_is_mid_merge(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"feature": ("feature.txt", "done\n")})
    run = start(repo, "feature")
    git(repo, "switch", "-q", "-c", "topic")
    (repo / "README.md").write_text("topic\n")
    git(repo, "commit", "-qam", "topic")
    git(repo, "switch", "-q", "main")
    (repo / "README.md").write_text("main\n")
    git(repo, "commit", "-qam", "main")
    git(repo, "merge", "topic", check=False)  # stops on the conflict
    before = state(repo)

    refused(run_cli(repo, "merge", run["id"]), "main has a merge in progress")
    assert state(repo) == before


# -- concurrent merges and clashes ----------------------------------------------------------


def test_two_merges_at_once_both_land(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"one": ("one.txt", "1\n"), "two": ("two.txt", "2\n")})
    runs = [start(repo, "one"), start(repo, "two")]
    results: dict[str, Result] = {}

    def merge(run_id: str) -> None:
        results[run_id] = run_cli(repo, "merge", run_id)

    threads = [threading.Thread(target=merge, args=(run["id"],)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for result in results.values():
        assert result.code == 0, result.stderr
    assert (repo / "one.txt").read_text() == "1\n" and (repo / "two.txt").read_text() == "2\n"
    assert git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "log", "--merges", "--format=%H").split()) == 2


def test_a_file_where_the_run_makes_a_directory_conflicts(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"nest": ("a/b", "inside\n")})
    run = start(repo, "nest")
    (repo / "a").write_text("a file on main\n")
    git(repo, "add", "a")
    git(repo, "commit", "-qm", "a is a file")
    before = state(repo)
    refused(run_cli(repo, "merge", run["id"]), "would conflict in a;", "nothing was changed")
    assert state(repo) == before


def test_an_untracked_file_where_the_merge_needs_a_directory(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"nest": ("a/b", "inside\n")})
    run = start(repo, "nest")
    (repo / "a").write_text("my untracked notes\n")
    before = state(repo)
    refused(run_cli(repo, "merge", run["id"]), "a (for a/b)", "nothing was changed")
    assert state(repo) == before


def test_an_untracked_directory_where_the_merge_writes_a_file(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, {"file": ("notes", "the run's notes\n")})
    run = start(repo, "file")
    (repo / "notes").mkdir()
    (repo / "notes" / "mine.txt").write_text("my notes\n")
    before = state(repo)
    refused(run_cli(repo, "merge", run["id"]), "notes/mine.txt", "nothing was changed")
    assert state(repo) == before
