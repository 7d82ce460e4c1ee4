"""The clean gate's cost on a 10,000-file repository, next to the checks' own time and raw git.

Before an iteration counts as done, its checks run again on a clean checkout of the commit
that would merge (`engine/verification/clean_gate.py`). The checkout is a detached worktree
kept in a pool and reset between uses. On the repository of `start.py` (10,000 files, about
50 MB, cached in bench/.work/), each round takes a new commit that changes 20 files (made
with a private index: no checkout moves) and times, in this order:

- `raw git reset`: `git checkout --force --detach <commit>` then `git clean -ffdxq` in the
  pooled checkout, through subprocess: the commands the gate runs, with no Python around them.
  The checkout is put back on the previous commit afterwards, outside the clock.
- `claim (reset)`: `CleanCheckouts.claim(commit)` up to the moment the checkout is handed
  over: the lock, looptui's git calls (bound to the worktree, each after checking it is one).
- `check alone`: the check itself (`run_check`), in the claimed checkout.
- `gate`: `run_gate` with that one check: what the gate adds to an iteration besides the
  claim; it is the check's time again plus looptui's bookkeeping.
- `ignored listing`: `Repository.untracked_entries(ignored_only=True)`, which the runner does
  before and after each agent turn to say what the turn wrote that git ignores.

The check walks the whole tree and reads every file, as a test suite's collection would.
The first claim, which creates the pooled checkout (`git worktree add --detach`), is timed
once and shown apart. Everything is removed at the end (the pool's worktree; the commits are
unreferenced and left to git's gc).

Run by hand: `.venv/bin/python bench/gate.py [--samples N] [--files N] [--megabytes N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from looptui.engine.checks import run_check
from looptui.engine.config import CheckConfig
from looptui.engine.verification.clean_gate import CleanCheckouts, run_gate
from looptui.engine.workspace import Repository
from start import WORK_DIR, clean_environ, git, prepare_repo, reset_repo

CHECK = CheckConfig(
    name="walk",
    run='python3 -c "import pathlib; print(sum(len(p.read_bytes()) for p in '
    "pathlib.Path('.').rglob('*.py')))\"",
)
CHANGED_FILES = 20


def new_commit(repo: Path, parent: str, round_number: int) -> str:
    """A commit on top of `parent` that rewrites CHANGED_FILES files, no checkout touched."""
    files = git(repo, "ls-files").split()[round_number * CHANGED_FILES :][:CHANGED_FILES]
    with tempfile.TemporaryDirectory() as scratch:
        env = {**clean_environ(), "GIT_INDEX_FILE": str(Path(scratch) / "index")}

        def run(*args: str, stdin: str | None = None) -> str:
            done = subprocess.run(
                ["git", *args], cwd=repo, env=env, input=stdin, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise SystemExit(f"git {args[0]} failed: {done.stderr}")
            return done.stdout.strip()

        run("read-tree", parent)
        for name in files:
            blob = run("hash-object", "-w", "--stdin", stdin=f"# round {round_number}\n{name}\n")
            run("update-index", "--cacheinfo", f"100644,{blob},{name}")
        tree = run("write-tree")
        return run(
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=b@x",
            "commit-tree",
            tree,
            "-p",
            parent,
            "-m",
            f"round {round_number}",
        )


def raw_reset(slot: Path, commit: str) -> float:
    started = time.perf_counter()
    for args in (["checkout", "--quiet", "--force", "--detach", commit], ["clean", "-ffdxq"]):
        subprocess.run(["git", *args], cwd=slot, env=clean_environ(), check=True)
    return time.perf_counter() - started


async def bench(repo: Path, samples: int) -> dict[str, list[float]]:
    repository = Repository(repo)
    pool = CleanCheckouts(repository, WORK_DIR / "gate-pool")
    environ = clean_environ()
    timings: dict[str, list[float]] = {}
    parent = git(repo, "rev-parse", "HEAD").strip()
    started = time.perf_counter()
    async with pool.claim(parent) as slot:
        first = time.perf_counter() - started
    print(f"first claim (creates the checkout): {first * 1000:.0f} ms", flush=True)
    try:
        for round_number in range(samples + 1):
            commit = new_commit(repo, parent, round_number)
            results = {"raw git reset": raw_reset(slot, commit)}
            raw_reset(slot, parent)  # back, outside the clock: the claim makes the same move
            started = time.perf_counter()
            async with pool.claim(commit) as slot:
                results["claim (reset)"] = time.perf_counter() - started
                started = time.perf_counter()
                check = await run_check(CHECK, slot, environ)
                results["check alone"] = time.perf_counter() - started
                assert check.passed, check.output
                started = time.perf_counter()
                gate = await run_gate(pool, slot, commit, [CHECK], (), environ)
                results["gate"] = time.perf_counter() - started
                assert gate.passed
                started = time.perf_counter()
                await asyncio.to_thread(repository.untracked_entries, slot, True)
                results["ignored listing"] = time.perf_counter() - started
            parent = commit
            line = ", ".join(f"{name} {value * 1000:.0f}" for name, value in results.items())
            label = "warm-up" if round_number == 0 else f"round {round_number}"
            print(f"{label}: {line} ms", flush=True)
            if round_number:
                for name, value in results.items():
                    timings.setdefault(name, []).append(value)
    finally:
        await asyncio.to_thread(pool.remove_all)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=7, help="timed rounds")
    parser.add_argument("--files", type=int, default=10_000, help="files in the repository")
    parser.add_argument("--megabytes", type=int, default=50, help="their total size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    WORK_DIR.mkdir(exist_ok=True)
    repo = prepare_repo(args.files, args.megabytes, args.seed)
    reset_repo(repo)
    print(f"repository: {repo}, load average {os.getloadavg()[0]:.2f}", flush=True)
    timings = asyncio.run(bench(repo, args.samples))
    print(f"\nmedians of {args.samples} rounds, a commit of {CHANGED_FILES} changed files each:")
    print(f"{'':22} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for name, values in timings.items():
        print(
            f"{name:22} {statistics.median(values) * 1000:10.1f} {min(values) * 1000:8.1f} "
            f"{max(values) * 1000:8.1f}"
        )
    check = statistics.median(timings["check alone"])
    added = statistics.median(timings["claim (reset)"]) + statistics.median(timings["gate"])
    ratio = added / check
    print(f"the gate adds {added * 1000:.0f} ms to a done iteration: {ratio:.2f}x the check")
    reset_repo(repo)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
