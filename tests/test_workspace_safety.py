"""Git edge cases: the user's signing and hooks, odd file names, ignored files, concurrency."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import threading
from pathlib import Path

import pytest

from conftest import cli_env, git, make_repo, run_cli
from looptui.engine.errors import MergeRefused
from looptui.engine.workspace import Repository
from test_workspace import FILES, start_run


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(make_repo(tmp_path / "repo", FILES))


def test_run_commits_are_made_unsigned_and_without_the_users_hooks(
    repository: Repository,
) -> None:
    root = repository.root
    # Every commit signed, by a "gpg" that always fails (a card not inserted, a passphrase
    # nobody can type), and a post-commit hook that leaves a mark.
    git(root, "config", "commit.gpgsign", "true")
    git(root, "config", "gpg.program", "false")
    hooks = root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "post-commit").write_text(f"#!/bin/sh\ntouch {root / 'hook-ran'}\n")
    (hooks / "post-commit").chmod(0o755)
    worktree = start_run(repository)
    (worktree / "a.txt").write_text("one\nTWO\nthree\n")
    (worktree / "b.txt").write_text("bee\nhive\n")

    head = repository.commit_all(worktree, "iteration 1")

    assert head is not None and git(worktree, "cat-file", "commit", head).count("gpgsig") == 0
    assert not (root / "hook-ran").exists()
    reject = git(worktree, "diff", f"{head}^", head, "--", "b.txt")  # its new side is head
    reverted = repository.revert_hunks(head, reject, "leave out b.txt")
    assert git(root, "show", f"{reverted}:b.txt") == "bee\n"


def test_a_merge_preview_knows_names_with_spaces_and_non_ascii(repository: Repository) -> None:
    worktree = start_run(repository)
    for name in ("my file.py", "é.py", "tab\there.txt"):
        (worktree / name).write_text("agent\n")
    head = repository.commit_all(worktree, "agent")
    assert head is not None

    preview = repository.preview_merge("main", head)

    assert set(preview.changed_files) == {"my file.py", "é.py", "tab\there.txt"}
    (repository.root / "my file.py").write_text("the user's own\n")
    (repository.root / "é.py").write_text("the user's own\n")
    with pytest.raises(MergeRefused, match=r"my file\.py, é\.py"):
        repository.merge(preview, "land", squash=False)
    assert (repository.root / "my file.py").read_text() == "the user's own\n"


def test_a_conflict_in_a_non_ascii_name_is_named_as_it_is(repository: Repository) -> None:
    git(repository.root, "commit", "-q", "--allow-empty", "-m", "base")
    (repository.root / "é.py").write_text("base\n")
    git(repository.root, "add", "é.py")
    git(repository.root, "commit", "-qm", "é")
    worktree = start_run(repository)
    (worktree / "é.py").write_text("agent\n")
    head = repository.commit_all(worktree, "agent")
    (repository.root / "é.py").write_text("user\n")
    git(repository.root, "commit", "-qam", "user")
    assert head is not None
    assert repository.preview_merge("main", head).conflicts == ("é.py",)


def test_a_merge_never_overwrites_an_ignored_file_in_the_users_checkout(
    repository: Repository,
) -> None:
    root = repository.root
    (root / "notes.log").write_text("the user's private notes\n")  # ignored by *.log
    worktree = start_run(repository)
    (worktree / ".gitignore").write_text("")  # the run tracks logs from now on
    (worktree / "notes.log").write_text("the agent's log\n")
    head = repository.commit_all(worktree, "agent")
    assert head is not None
    preview = repository.preview_merge("main", head)
    assert "notes.log" in preview.changed_files

    with pytest.raises(MergeRefused, match=r"ignored files .*notes\.log"):
        repository.merge(preview, "land", squash=False)
    assert (root / "notes.log").read_text() == "the user's private notes\n"
    assert git(root, "rev-parse", "main").strip() == preview.base_tip


def test_an_unrelated_ignored_file_does_not_block_a_merge(repository: Repository) -> None:
    (repository.root / "build.log").write_text("ignored, not touched by the run\n")
    worktree = start_run(repository)
    (worktree / "b.txt").write_text("bee\nhive\n")
    head = repository.commit_all(worktree, "agent")
    assert head is not None
    repository.merge(repository.preview_merge("main", head), "land", squash=True)
    assert (repository.root / "b.txt").read_text() == "bee\nhive\n"


@pytest.mark.parametrize("round_", range(3))
def test_worktrees_can_be_added_and_removed_from_many_threads_at_once(
    repository: Repository, round_: int
) -> None:
    base = repository.branch_commit("main")
    errors: list[str] = []

    def attempt(action: str, index: int) -> None:
        path = repository.worktrees_dir / f"r{index}"
        try:
            if action == "add":
                repository.create_worktree(path, f"looptui/test/r{index}", base)
            else:
                repository.remove_worktree(path)
        except Exception as exc:
            errors.append(f"{action} r{index}: {exc}")

    def all_at_once(jobs: list[tuple[str, int]]) -> None:
        threads = [threading.Thread(target=attempt, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    all_at_once([("add", index) for index in range(12)])
    # New runs start while finished ones are removed, as several looptui processes would.
    all_at_once([("remove", index) for index in range(12)] + [("add", 12 + i) for i in range(12)])
    all_at_once([("remove", 12 + index) for index in range(12)])
    assert errors == []
    assert len(git(repository.root, "worktree", "list").splitlines()) == 1


# -- a run's worktree that disappears never lets git reach the user's checkout --------------

WIPE_WORKTREE = textwrap.dedent(
    """\
    import os, pathlib, shutil, sys
    here = pathlib.Path(os.environ["LOOPTUI_WORKTREE"])
    shutil.rmtree(here)
    if sys.argv[1] == "recreate":
        here.mkdir()
        (here / "notes.txt").write_text("written where the worktree was\\n")
    print("worktree removed")
    """
)


def users_checkout(root: Path, state: Path) -> dict[str, object]:
    """All of the user's checkout that a stray commit could change, down to the bytes:
    branch, HEAD, refs, the index file, and every file (looptui's state dir aside)."""
    files = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and ".git" not in path.relative_to(root).parts
        and state not in path.parents
    }
    return {
        "branch": git(root, "symbolic-ref", "HEAD"),
        "head": git(root, "rev-parse", "HEAD"),
        "refs": git(root, "for-each-ref", "refs/heads/main"),
        "log": git(root, "log", "--format=%H %an %s", "main"),
        "index": hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest(),
        "status": git(  # looking must not refresh the index it compares
            root, "--no-optional-locks", "status", "--porcelain=v1", "--untracked-files=all"
        ),
        "files": files,
    }


@pytest.mark.parametrize("how", ["delete", "recreate", "recreate-and-fail"])
def test_an_agent_that_deletes_its_worktree_fails_the_run_and_never_commits_the_users_work(
    tmp_path: Path, how: str
) -> None:
    config = {
        "agents": {"wiper": {"kind": "command", "command": ["python", "-c", WIPE_WORKTREE, how]}},
        "loops": {"wipe": {"prompt": "clean up", "agent": "wiper", "checks": ["true"]}},
    }
    root = make_repo(tmp_path / "repo", FILES, config)
    # The nastiest place for worktrees: inside the user's own checkout, where git searching
    # upwards from a vanished worktree lands in the user's repository.
    state = root / "state"
    (root / ".git" / "info" / "exclude").write_text("state/\n")
    (root / "a.txt").write_text("the user's uncommitted edit\n")
    (root / "b.txt").write_text("the user's staged edit\n")
    git(root, "add", "b.txt")
    (root / "private.txt").write_text("the user's untracked file\n")
    # a tracked file touched but not changed: any `git status` in the user's checkout would
    # refresh its index (rewriting .git/index), which must not happen either
    tracked = next(path for path in sorted(root.iterdir()) if path.name in FILES)
    os.utime(tracked, (1_000_000_000, 1_000_000_000))
    before = users_checkout(root, state)
    env = {**cli_env(), "XDG_STATE_HOME": str(state)}

    result = run_cli(root, "run", "wipe", env=env)

    assert result.code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "worktree removed" in result.stdout  # the agent did run
    [run] = json.loads(run_cli(root, "status", "--json", env=env).stdout)
    worktree = Path(run["worktree"])
    assert worktree.parent.parent == state / "looptui" / "worktrees"
    assert run["status"] == "failed"
    assert run["error"] == f"the worktree of run {run['id']} is gone: {worktree}"
    assert f"is gone: {worktree}" in result.stdout
    assert users_checkout(root, state) == before
    assert "looptui agent" not in git(root, "log", "--all", "--format=%an")
    # What is left of the run can still be dropped, and that too leaves the user's work be.
    discarded = run_cli(root, "discard", run["id"], "--force", env=env)
    assert discarded.code == 0, discarded.stderr
    assert not worktree.exists() and git(root, "branch", "--list", "looptui/*") == ""
    assert users_checkout(root, state) == before
