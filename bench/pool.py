"""Run start from the warm worktree pool, against a fresh `git worktree add`, on 10,000 files.

On the repository of `start.py` (10,000 files, about 50 MB, cached in bench/.work/), each
round times, in this order:

- `raw git worktree add`: `git worktree add --quiet -b <branch> -- <path> <commit>` through
  subprocess, the command a run without the pool costs, with no Python around it.
- `create_worktree`: `Repository.create_worktree()`, what the runner does when the pool has
  no slot for it.
- `pool claim`: `WorktreePool.claim()` (engine/workspace/pool.py) of a slot the pool made
  beforehand, outside the clock: the check that the base's tip is the run's commit, the check
  that the slot holds that commit and nothing else (`git status --porcelain=v2 --ignored`),
  `git switch -c`, `git worktree move` to the run's path, and the binding checks of each git
  call. This is what the runner's `_prepare_worktree` awaits.
- `pool fill`: the refill after that claim, awaited outside the clock and shown for its
  cost, paid off the critical path: a `git worktree add --detach`, then a wait of
  `SETTLE_AFTER` (1.1 s) and one more check of the slot, which rewrites its index so that
  the next claim's `git status` trusts the files' cached stat instead of hashing them all.

As in start.py, worktrees are not removed between samples (on this machine's disk a checkout
just after a removal is several times slower), each sample is followed by `sync`, and one
untimed warm-up round comes first. Everything is removed at the end: the pool is closed, and
the runs' worktrees and branches are deleted; the script checks that `git worktree list`
shows only the repository and that `main` is the only branch left.

Run by hand: `.venv/bin/python bench/pool.py [--samples N] [--files N] [--megabytes N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from looptui.engine.workspace import Repository
from looptui.engine.workspace.pool import WorktreePool
from start import IDENTITY, WORK_DIR, clean_environ, git, prepare_repo, reset_repo

RAW = "raw git worktree add"
CLAIM = "pool claim"
FILL = "pool fill (1 slot, background, 1.1 s settle included)"


class Bench:
    """The variants, sharing one repository, one pool and one event loop."""

    def __init__(self, repo: Path, runner: asyncio.Runner) -> None:
        self.repo = repo
        self.repository = Repository(repo)
        self.commit = self.repository.branch_commit("main")
        self.worktrees = self.repository.worktrees_dir
        self.runner = runner
        self.env = {**clean_environ(), **IDENTITY}
        self.pool = WorktreePool(self.repository, 1)

    def raw_git(self, name: str) -> float:
        path, branch = self.worktrees / name, f"bench/{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        command = ["git", "worktree", "add", "--quiet", "-b", branch, "--", str(path), self.commit]
        started = time.perf_counter()
        subprocess.run(command, cwd=self.repo, env=self.env, check=True)
        elapsed = time.perf_counter() - started
        os.sync()
        return elapsed

    def create_worktree(self, name: str) -> float:
        path, branch = self.worktrees / name, f"bench/{name}"
        started = time.perf_counter()
        self.repository.create_worktree(path, branch, self.commit)
        elapsed = time.perf_counter() - started
        os.sync()
        return elapsed

    def fill(self) -> float:
        """Fill the pool (one slot), outside any other clock."""
        started = time.perf_counter()
        self.runner.run(self.pool.fill("main"))
        elapsed = time.perf_counter() - started
        os.sync()
        return elapsed

    def claim(self, name: str) -> float:
        path, branch = self.worktrees / name, f"bench/{name}"
        if len(self.pool.ready("main")) != 1:
            raise SystemExit("the pool has no slot ready before the claim")
        started = time.perf_counter()
        claimed = self.runner.run(self.pool.claim("main", self.commit, branch, path))
        elapsed = time.perf_counter() - started
        if not claimed or self.repository.head_of(path) != self.commit:
            raise SystemExit(f"the pool did not hand out a worktree at {self.commit[:12]}")
        return elapsed

    def close(self) -> None:
        self.runner.run(self.pool.close())


def left_behind(repo: Path) -> tuple[int, list[str]]:
    """How many worktrees git knows of (the repository's own included), and the branches."""
    listing = git(repo, "worktree", "list", "--porcelain")
    worktrees = sum(line.startswith("worktree ") for line in listing.splitlines())
    return worktrees, git(repo, "branch", "--format=%(refname:short)").split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=7, help="timed rounds")
    parser.add_argument("--files", type=int, default=10_000, help="files in the repository")
    parser.add_argument("--megabytes", type=int, default=50, help="their total size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    WORK_DIR.mkdir(exist_ok=True)
    repo = prepare_repo(args.files, args.megabytes, args.seed)
    if reset_repo(repo):
        print("removed worktrees a previous run left; on a disk that discards online the")
        print("first samples may be slow: if so, wait a few minutes and run again")
    tracked = len(git(repo, "ls-files", "-z").split("\0")) - 1
    print(f"repository: {repo} ({tracked:,} files)")

    samples: dict[str, list[float]] = {}
    with asyncio.Runner() as runner:
        bench = Bench(repo, runner)
        variants: list[tuple[str, Callable[[str], float]]] = [
            (RAW, bench.raw_git),
            ("create_worktree", bench.create_worktree),
        ]
        try:
            bench.fill()  # the first slot; later ones are the refills the claims start
            for round_number in range(args.samples + 1):
                results = {
                    name: measure(f"{name.split()[0]}-{round_number}") for name, measure in variants
                }
                results[CLAIM] = bench.claim(f"claim-{round_number}")
                os.sync()
                results[FILL] = bench.fill()  # awaits the refill the claim started
                warm_up = round_number == 0
                line = ", ".join(f"{name} {value * 1000:.1f}" for name, value in results.items())
                print(f"{'warm-up' if warm_up else f'round {round_number}'}: {line} ms", flush=True)
                if not warm_up:
                    for name, seconds in results.items():
                        samples.setdefault(name, []).append(seconds)
        finally:
            bench.close()
    reset_repo(repo)
    worktrees, branches = left_behind(repo)

    raw = statistics.median(samples[RAW])
    print()
    print(f"medians of {args.samples} rounds; ratios against the median of {RAW}")
    print()
    print(f"| variant | median ms | min ms | max ms | ÷ {RAW} |")
    print("|---|---:|---:|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median * 1000:.1f} | {min(values) * 1000:.1f} | "
            f"{max(values) * 1000:.1f} | {median / raw:.3f}× |"
        )
    print()
    claim = statistics.median(samples[CLAIM])
    print(f"a run's checkout on the critical path: {raw * 1000:.0f} ms -> {claim * 1000:.1f} ms")
    print(f"left behind: {worktrees} worktree(s) (the repository's own), branches {branches}")
    if worktrees != 1 or branches != ["main"]:
        raise SystemExit("the benchmark left worktrees or branches behind")


if __name__ == "__main__":
    main()
