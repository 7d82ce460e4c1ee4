"""Worktrees, snapshots, diffs, merge previews and merges, against real git repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import git, make_repo
from looptui.engine.errors import MergeRefused, WorkspaceError
from looptui.engine.workspace import PathEscape, Repository, confine

FILES = {"a.txt": "one\ntwo\nthree\n", "b.txt": "bee\n", ".gitignore": "*.log\n"}


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(make_repo(tmp_path / "repo", FILES))


def start_run(repository: Repository, name: str = "r1") -> Path:
    worktree = repository.worktrees_dir / name
    base = repository.branch_commit("main")
    repository.create_worktree(worktree, f"looptui/test/{name}", base)
    return worktree


def test_worktrees_and_the_store_never_show_in_the_users_status(
    repository: Repository,
) -> None:
    worktree = start_run(repository)
    (worktree / "new.txt").write_text("agent work\n")
    repository.store_path.parent.mkdir(parents=True, exist_ok=True)
    repository.store_path.write_text("db")
    assert git(repository.root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(worktree, "branch", "--show-current").strip() == "looptui/test/r1"


def test_diff_holds_committed_uncommitted_and_untracked_changes(repository: Repository) -> None:
    worktree = start_run(repository)
    base = repository.branch_commit("main")
    (worktree / "a.txt").write_text("one\nTWO\nthree\n")
    repository.commit_all(worktree, "committed change")
    (worktree / "b.txt").write_text("bee\nsting\n")  # modified, not committed
    git(worktree, "add", "b.txt")  # ...and staged: the snapshot must not disturb this
    (worktree / "c.txt").write_text("untracked\n")
    (worktree / "debug.log").write_text("ignored\n")
    index_before = git(worktree, "diff", "--cached", "--name-only")

    tree = repository.snapshot(worktree)
    diff = repository.diff(base, tree)

    assert "+TWO" in diff and "+sting" in diff and "+untracked" in diff
    assert "debug.log" not in diff
    assert git(worktree, "diff", "--cached", "--name-only") == index_before
    assert "c.txt" in git(worktree, "status", "--porcelain")  # still untracked
    assert repository.diff_stat(base, tree).files == 3


def test_commit_all_commits_once_and_reports_nothing_to_commit(repository: Repository) -> None:
    worktree = start_run(repository)
    assert repository.commit_all(worktree, "nothing") is None
    (worktree / "c.txt").write_text("new\n")
    sha = repository.commit_all(worktree, "agent work")
    assert sha == repository.head_of(worktree)
    assert git(worktree, "log", "-1", "--format=%an").strip() == "looptui agent"


def test_a_conflicting_merge_is_previewed_without_touching_any_checkout(
    repository: Repository,
) -> None:
    worktree = start_run(repository)
    (worktree / "a.txt").write_text("one\nagent\nthree\n")
    head = repository.commit_all(worktree, "agent")
    (repository.root / "a.txt").write_text("one\nuser\nthree\n")
    git(repository.root, "commit", "-qam", "user")
    before = git(repository.root, "rev-parse", "HEAD"), (repository.root / "a.txt").read_bytes()

    assert head is not None
    preview = repository.preview_merge("main", head)

    assert preview.conflicts == ("a.txt",)
    with pytest.raises(MergeRefused, match=r"conflict in a\.txt"):
        repository.merge(preview, "merge", squash=False)
    after = git(repository.root, "rev-parse", "HEAD"), (repository.root / "a.txt").read_bytes()
    assert after == before
    assert git(repository.root, "status", "--porcelain") == ""


def test_merge_into_a_branch_that_is_not_checked_out_moves_only_the_branch(
    repository: Repository,
) -> None:
    git(repository.root, "branch", "release")
    worktree = start_run(repository)
    (worktree / "b.txt").write_text("bee\nhive\n")
    head = repository.commit_all(worktree, "agent")
    assert head is not None

    commit = repository.merge(repository.preview_merge("release", head), "land", squash=True)

    assert repository.branch_commit("release") == commit
    assert git(repository.root, "show", "release:b.txt") == "bee\nhive\n"
    assert (repository.root / "b.txt").read_text() == "bee\n"  # main's checkout untouched
    assert git(repository.root, "rev-list", "--parents", "-1", commit).count(" ") == 1


def test_squash_merged_work_counts_as_merged(repository: Repository) -> None:
    worktree = start_run(repository)
    (worktree / "b.txt").write_text("bee\nhive\n")
    head = repository.commit_all(worktree, "agent")
    assert head is not None
    assert not repository.is_merged("main", head)
    git(repository.root, "merge", "--squash", "looptui/test/r1")
    git(repository.root, "commit", "-qm", "squashed by hand")
    assert repository.is_merged("main", head)


def test_repository_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a git repository"):
        Repository(tmp_path)
    git(tmp_path, "init", "-q")
    with pytest.raises(WorkspaceError, match="no commits"):
        Repository(tmp_path).require_commits()


def test_confine_refuses_every_way_out(tmp_path: Path) -> None:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, root / "link.txt")
    os.symlink(tmp_path, root / "src" / "up")
    (root / "inner.txt").write_text("ok")
    os.symlink(root / "inner.txt", root / "alias.txt")

    assert confine(root, "src/new.py") == (root / "src/new.py").resolve()
    assert confine(root, "alias.txt") == (root / "inner.txt").resolve()
    for escape in (
        "../secret.txt",
        "src/../../secret.txt",
        str(outside),
        "/etc/passwd",
        "link.txt",
        "src/up/secret.txt",
        "~/x",
        ".git/config",
        "",
    ):
        with pytest.raises(PathEscape):
            confine(root, escape)
