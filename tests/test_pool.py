"""The warm worktree pool (engine/workspace/pool.py), against real git repositories: what a
claim hands out, what it refuses (stale, dirty), concurrency, cleanup, and a run through the
engine that starts in a prepared worktree."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from conftest import cli_env, git, make_repo, run_cli
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.errors import ConfigError, WorkspaceError
from looptui.engine.workspace import Repository
from looptui.engine.workspace.pool import WorktreePool
from process_support import wait_for

FILES = {"a.txt": "one\ntwo\n", "src/b.txt": "bee\n", ".gitignore": "*.log\n"}


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(make_repo(tmp_path / "repo", FILES))


def worktrees(repository: Repository) -> list[Path]:
    """Every worktree git knows of, the main one first."""
    listing = git(repository.root, "worktree", "list", "--porcelain")
    return [
        Path(line.removeprefix("worktree ")).resolve()
        for line in listing.splitlines()
        if line.startswith("worktree ")
    ]


def branches(repository: Repository) -> list[str]:
    return git(repository.root, "branch", "--format=%(refname:short)").split()


def commit_on_main(repository: Repository, name: str, text: str) -> str:
    (repository.root / name).write_text(text)
    git(repository.root, "add", name)
    git(repository.root, "commit", "--quiet", "-m", f"change {name}")
    return repository.branch_commit("main")


def run_path(repository: Repository, name: str) -> Path:
    return repository.worktrees_dir / name


async def test_a_claim_hands_out_the_prepared_checkout_on_the_new_branch(
    repository: Repository,
) -> None:
    pool = WorktreePool(repository, 1, settle_after=0)
    await pool.fill("main")
    (slot,) = pool.ready("main")
    inode = (slot / "a.txt").stat().st_ino
    tip = repository.branch_commit("main")
    path = run_path(repository, "r1")

    assert await pool.claim("main", tip, "looptui/job/r1", path)

    assert not slot.exists() and repository.is_worktree(path)
    assert git(path, "branch", "--show-current").strip() == "looptui/job/r1"
    assert repository.head_of(path) == tip
    # the very checkout the pool made, renamed: no file was written again
    assert (path / "a.txt").stat().st_ino == inode
    (path / "new.txt").write_text("agent work\n")  # and a run can work in it at once
    commit = repository.commit_all(path, "iteration 1")
    assert commit is not None and git(path, "log", "-1", "--format=%P").strip() == tip
    assert repository.branch_commit("looptui/job/r1") == commit
    await pool.close()


async def test_a_slot_left_behind_by_the_base_is_never_handed_out_at_the_old_commit(
    repository: Repository,
) -> None:
    pool = WorktreePool(repository, 1, settle_after=0)
    await pool.fill("main")
    (slot,) = pool.ready("main")
    old = repository.branch_commit("main")
    new = commit_on_main(repository, "a.txt", "one\nTWO\n")

    # a run at the old commit gets nothing from the pool: the old commit is not the tip
    assert not await pool.claim("main", old, "looptui/job/old", run_path(repository, "old"))
    assert not run_path(repository, "old").exists()
    assert not repository.branch_exists("looptui/job/old")

    # the refill that claim started moves the slot to the new tip
    await pool.fill("main")
    assert pool.ready("main") == [slot] and repository.head_of(slot) == new
    path = run_path(repository, "new")
    assert await pool.claim("main", new, "looptui/job/new", path)
    assert repository.head_of(path) == new and (path / "a.txt").read_text() == "one\nTWO\n"
    await pool.close()


async def test_a_claim_at_a_new_tip_refreshes_a_stale_slot_on_the_spot(
    repository: Repository,
) -> None:
    pool = WorktreePool(repository, 1, settle_after=0)
    await pool.fill("main")
    (slot,) = pool.ready("main")
    unchanged = (slot / "src" / "b.txt").stat().st_ino
    new = commit_on_main(repository, "a.txt", "changed\n")
    path = run_path(repository, "r1")

    assert await pool.claim("main", new, "looptui/job/r1", path)

    assert repository.head_of(path) == new and (path / "a.txt").read_text() == "changed\n"
    assert (path / "src" / "b.txt").stat().st_ino == unchanged  # only what changed rewritten
    assert git(path, "status", "--porcelain", "--ignored") == ""
    await pool.close()


@pytest.mark.parametrize(
    ("name", "text"),
    [("a.txt", "edited\n"), ("untracked.txt", "stray\n"), ("build.log", "ignored\n")],
    ids=["modified", "untracked", "ignored"],
)
async def test_a_dirty_slot_is_never_handed_out(
    repository: Repository, name: str, text: str
) -> None:
    pool = WorktreePool(repository, 1, settle_after=0)
    await pool.fill("main")
    (slot,) = pool.ready("main")
    (slot / name).write_text(text)
    tip = repository.branch_commit("main")
    path = run_path(repository, "r1")

    assert not await pool.claim("main", tip, "looptui/job/r1", path)
    assert not path.exists() and not repository.branch_exists("looptui/job/r1")
    assert not slot.exists()  # removed, not put back

    await pool.fill("main")  # the refill made a clean one
    assert await pool.claim("main", tip, "looptui/job/r1", path)
    assert not (path / name).exists() or (path / name).read_text() != text
    assert git(path, "status", "--porcelain", "--ignored") == ""
    await pool.close()


async def test_concurrent_claims_never_share_a_slot(repository: Repository) -> None:
    pool = WorktreePool(repository, 2, settle_after=0)
    await pool.fill("main")
    tip = repository.branch_commit("main")
    paths = [run_path(repository, f"r{n}") for n in range(3)]

    claims = [pool.claim("main", tip, f"looptui/job/r{n}", p) for n, p in enumerate(paths)]
    results = await asyncio.gather(*claims)

    assert sorted(results) == [False, True, True]  # two slots, two claims served
    served = [path for path, served in zip(paths, results, strict=True) if served]
    git_dirs = {git(path, "rev-parse", "--absolute-git-dir").strip() for path in served}
    assert len(git_dirs) == 2  # two worktrees, not one slot handed out twice
    for n, path in enumerate(paths):
        if path in served:
            assert git(path, "branch", "--show-current").strip() == f"looptui/job/r{n}"
        else:
            assert not path.exists() and not repository.branch_exists(f"looptui/job/r{n}")
    await pool.close()


async def test_close_leaves_no_worktree_and_no_branch(repository: Repository) -> None:
    pool = WorktreePool(repository, 2, settle_after=0)
    await pool.fill("main")
    assert len(worktrees(repository)) == 3

    await pool.close()

    assert worktrees(repository) == [repository.root]
    assert branches(repository) == ["main"]
    assert not pool.root.exists()


async def test_close_during_a_refill_removes_what_the_refill_was_making(
    repository: Repository,
) -> None:
    pool = WorktreePool(repository, 2, settle_after=0)
    await pool.fill("main")
    tip = repository.branch_commit("main")
    path = run_path(repository, "r1")
    assert await pool.claim("main", tip, "looptui/job/r1", path)  # a refill starts now

    await pool.close()

    assert worktrees(repository) == [repository.root, path.resolve()]  # the run's stays
    assert not pool.root.exists()
    repository.remove_worktree(path)
    repository.delete_branch("looptui/job/r1")
    assert worktrees(repository) == [repository.root] and branches(repository) == ["main"]


async def test_slots_a_crash_left_are_reused_or_removed_by_the_next_pool(
    repository: Repository,
) -> None:
    crashed = WorktreePool(repository, 1, settle_after=0)
    await crashed.fill("main")  # and never closed
    (left,) = crashed.ready("main")
    (left / "stray.log").write_text("dirty\n")  # a leftover that must not be reused as is
    half_made = crashed.root / "slot-7"
    half_made.mkdir()  # a directory with no worktree in it, as a crash mid-add leaves

    pool = WorktreePool(repository, 2, settle_after=0)
    await pool.fill("main")

    ready = pool.ready("main")
    assert len(ready) == 2 and not half_made.exists()
    assert len(worktrees(repository)) == 3  # nothing of the crashed pool's left beside them
    for slot in ready:
        assert git(slot, "status", "--porcelain", "--ignored") == ""
    assert all(int(slot.name.removeprefix("slot-")) > 7 for slot in ready if slot != left)
    await pool.close()
    assert worktrees(repository) == [repository.root]


async def test_a_base_branch_that_does_not_exist_fails_the_fill_and_any_claim(
    repository: Repository,
) -> None:
    pool = WorktreePool(repository, 1, settle_after=0)
    with pytest.raises(WorkspaceError, match="no branch 'nope'"):
        await pool.fill("nope")
    tip = repository.branch_commit("main")
    assert not await pool.claim("nope", tip, "looptui/job/r1", run_path(repository, "r1"))
    await pool.close()
    assert worktrees(repository) == [repository.root]


def engine_config(pool_size: int | None) -> dict[str, Any]:
    settings = {} if pool_size is None else {"pool_size": pool_size}
    return {
        "settings": settings,
        "agents": {
            "agent": {
                "kind": "command",
                "command": [sys.executable, "-c", "open('done.txt', 'w').write('ok')"],
            }
        },
        "loops": {
            "job": {
                "prompt": "Create done.txt.",
                "agent": "agent",
                "checks": [{"name": "done", "run": "test -f done.txt"}],
                "max_iterations": 2,
            }
        },
    }


async def test_a_run_through_the_engine_starts_in_a_pool_slot(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, engine_config(1))
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    pool = engine.pool
    assert pool is not None
    assert engine.warm_pool() == ["main"]
    await pool.fill("main")  # waits for the background fill warm_pool started
    (slot,) = pool.ready("main")
    inode = (slot / "README.md").stat().st_ino

    run = await engine.start_run("job")
    final = await engine.wait(run.id)

    assert final.status is RunStatus.SUCCEEDED and final.iterations == 1
    worktree = Path(final.worktree)
    assert (worktree / "README.md").stat().st_ino == inode  # the slot became the worktree
    assert git(worktree, "branch", "--show-current").strip() == final.branch
    assert repository_log(worktree) == ["job: iteration 1", "initial"]
    await engine.close()
    assert not pool.root.exists()  # the refill after the claim was removed with the pool
    left = worktrees(engine.repository)
    assert worktree.resolve() in left  # the run's own, kept for review
    assert not [path for path in left if path.is_relative_to(pool.root.resolve())]


def repository_log(worktree: Path) -> list[str]:
    return git(worktree, "log", "--format=%s").splitlines()


async def test_without_pool_size_the_engine_has_no_pool(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, engine_config(None))
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    assert engine.pool is None and engine.warm_pool() == []
    run = await engine.start_run("job")
    assert (await engine.wait(run.id)).status is RunStatus.SUCCEEDED
    await engine.close()


async def test_a_reload_gives_the_engine_a_pool_and_a_lower_size_shrinks_it(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, engine_config(None))
    engine = await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))
    (root / CONFIG_NAME).write_text(tomli_w.dumps(engine_config(2)))
    engine.reconfigure(load_config(root / CONFIG_NAME))
    pool = engine.pool
    assert pool is not None and engine.warm_pool() == ["main"]
    await pool.fill("main")
    assert len(pool.ready("main")) == 2

    (root / CONFIG_NAME).write_text(tomli_w.dumps(engine_config(0)))
    engine.reconfigure(load_config(root / CONFIG_NAME))
    await pool.fill("main")
    assert pool.ready("main") == [] and worktrees(engine.repository) == [root.resolve()]
    await engine.close()


@pytest.mark.parametrize("value", [-1, 33, True, "2", 1.5])
def test_a_bad_pool_size_is_one_line(tmp_path: Path, value: object) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(tomli_w.dumps({"settings": {"pool_size": value}}))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "settings.pool_size: expected an integer from 0 (no pool) to 32" in message
    assert "\n" not in message


def test_pool_size_is_read_and_defaults_to_no_pool(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(tomli_w.dumps({"settings": {"pool_size": 3}}))
    assert load_config(path).pool_size == 3
    path.write_text(tomli_w.dumps({"settings": {}}))
    assert load_config(path).pool_size == 0


@pytest.mark.usefixtures("service")
def test_the_service_fills_the_pool_as_it_starts_and_empties_it_when_it_stops(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, engine_config(1))
    repository = Repository(root)
    pool_dir = repository.worktrees_dir / "pool"

    assert run_cli(root, "service", "start").code == 0
    slot = wait_for(
        lambda: next((p for p in worktrees(repository) if p.parent == pool_dir.resolve()), None),
        "a pool slot made by the service",
        60.0,
    )
    assert git(slot, "rev-parse", "HEAD").strip() == repository.branch_commit("main")

    stopped = run_cli(root, "service", "stop")
    assert stopped.code == 0, stopped
    assert worktrees(repository) == [root.resolve()] and not pool_dir.exists()
