"""Run start overhead: looptui against raw `git worktree add` on a 10,000-file repository.

The repository (10,000 files, about 50 MB, in nested directories, one commit, packed with
`git gc`) is generated once and cached in bench/.work/. Each round times, in this order:

- `raw git`: `git worktree add --quiet -b <branch> -- <path> <commit>` through subprocess,
  the very command looptui runs, with no Python around it but the spawn.
- `create_worktree`: `Repository.create_worktree()` called directly (GitPython's execute).
- `engine start`: `Engine.start_run()` on an open engine, up to the moment the runner emits
  the first iteration's `iteration/started` event. That is the honest "run started": the run
  is recorded as running, its worktree is checked out, iteration 1 is recorded and the agent
  is launched next. The time is taken from the event's own timestamp (set at emit). The time
  until a subscriber receives that event is reported beside it; it adds the store writer's
  batching delay (up to 50 ms), which is what a screen would show.
- `engine start minus its checkout`: per engine sample, the emitted time less the time the
  engine's own `git worktree add` took (timed by wrapping that one method of the engine's
  `Repository` in this script): what looptui adds, free of the checkout's noise.
- `pool claim`: what a pool of prepared worktrees would leave on the critical path: in a
  worktree prepared beforehand on a detached HEAD at the base commit (outside the clock),
  `git switch --quiet -c <branch>`. looptui has no such pool; this is raw git, to size one.

Worktrees are not removed between samples: on the machine of RESULTS.md (ext4 mounted with
`discard`, in a Firecracker VM), for some minutes after worktrees are deleted a checkout
that took 0.45 s takes 3 to 8 s, nearly all of it kernel time, for raw git and looptui
alike, so removal would measure the disk's recovery rather than looptui. Each sample is
followed by `sync`, outside the clock, so that its writeback does not land inside the next
clock. Everything is removed at the end; let the machine rest a few minutes before running
again. One untimed warm-up round comes first (the pack in the page cache, imports). The
engine's agent is `true` with one iteration and no checks; the run is awaited to its end
outside the clock.

Run by hand: `.venv/bin/python bench/start.py [--samples N] [--files N] [--megabytes N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from looptui.engine import Engine, load_config
from looptui.engine.workspace import Repository
from looptui.protocol.events import IterationMarked

WORK_DIR = Path(__file__).resolve().parent / ".work"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
LOOP = "start"
ENGINE = "engine start (emitted)"
ENGINE_OVERHEAD = "engine start minus its checkout"
WORDS = (
    "def class return import self value result error test assert path file line build "
    "check config worktree branch commit store event agent loop iteration None True False "
    "for while if else elif try except finally with as lambda yield await async pass"
).split()


def clean_environ() -> dict[str, str]:
    """This environment without GIT_* variables, which would point git elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**clean_environ(), **IDENTITY},
    )
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def generate_repo(path: Path, files: int, total_bytes: int, seed: int) -> None:
    """A committed, packed repository of `files` text files totalling about `total_bytes`,
    three directory levels deep."""
    rng = random.Random(seed)
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(2, 14))) + "\n" for _ in range(4096)]
    mean = total_bytes // files
    fan = max(2, round(files ** (1 / 4)))  # files per leaf directory ≈ directories per level
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    for index in range(files):
        a, b, c = index // fan**3 % fan, index // fan**2 % fan, index // fan % fan
        target = path / f"pkg{a:02d}" / f"sub{b:02d}" / f"mod{c:02d}" / f"file{index:05d}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(mean // 10, 2 * mean - mean // 10)
        text = "".join(rng.choices(lines, k=size // 40 + 1))[:size]
        target.write_text(text)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "gc.auto", "0")  # else commit starts a background gc that races ours
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", f"{files} generated files")
    git(path, "gc", "--quiet")


def prepare_repo(files: int, megabytes: int, seed: int) -> Path:
    """The cached repository for these parameters, generated on first use."""
    path = WORK_DIR / f"repo-{files}-{megabytes}mb-{seed}"
    ready = path.with_name(path.name + ".ready")
    if not ready.exists():
        print(f"generating {path} ({files:,} files, {megabytes} MB)...", flush=True)
        started = time.perf_counter()
        generate_repo(path, files, megabytes * 1024 * 1024, seed)
        ready.write_text("")
        print(f"generated in {time.perf_counter() - started:.0f}s", flush=True)
    return path


def reset_repo(repo: Path) -> bool:
    """Drop the worktrees, branches and store a run of this script left; True if any."""
    data_dir = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    if not data_dir.is_absolute():
        data_dir = repo / data_dir
    worktrees = Repository(repo).worktrees_dir  # under the state home, not in .git
    found = (data_dir / "looptui").exists() or worktrees.exists()
    shutil.rmtree(data_dir / "looptui", ignore_errors=True)
    shutil.rmtree(worktrees, ignore_errors=True)
    git(repo, "worktree", "prune")
    refs = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
    for branch in refs.split():
        if branch != "main":
            git(repo, "branch", "--quiet", "-D", branch)
    return found


def write_config(path: Path) -> Path:
    config = {
        "settings": {"max_parallel": 1},
        "agents": {"noop": {"kind": "command", "command": ["true"]}},
        "loops": {LOOP: {"prompt": "Start.", "agent": "noop", "max_iterations": 1}},
    }
    path.write_text(tomli_w.dumps(config))
    return path


@dataclass
class Timings:
    """Seconds per variant, one entry per timed round."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, variant: str, seconds: float) -> None:
        self.samples.setdefault(variant, []).append(seconds)

    def median(self, variant: str) -> float:
        return statistics.median(self.samples[variant])


class Bench:
    """The variants, sharing one repository, one engine and one event loop."""

    def __init__(self, repo: Path, config: Path, runner: asyncio.Runner) -> None:
        self.repo = repo
        self.repository = Repository(repo)
        self.commit = self.repository.branch_commit("main")
        self.worktrees = self.repository.worktrees_dir
        self.runner = runner
        self.env = {**clean_environ(), **IDENTITY}
        started = time.perf_counter()
        self.engine = runner.run(Engine.open(repo, self.env, load_config(config)))
        self.engine_open = time.perf_counter() - started
        # The engine's own checkout, timed where it happens, so that what the engine adds
        # around it can be told apart from the noise of the checkout itself.
        self.engine_checkouts: list[float] = []
        checkout = self.engine.repository.create_worktree

        def timed_checkout(path: Path, branch: str, base_commit: str) -> None:
            started = time.perf_counter()
            try:
                checkout(path, branch, base_commit)
            finally:
                self.engine_checkouts.append(time.perf_counter() - started)

        self.engine.repository.create_worktree = timed_checkout  # type: ignore[method-assign]

    def flush_disk(self) -> None:
        """Write back what the last sample wrote, so that it does not land in the next clock."""
        os.sync()

    def raw_git(self, name: str) -> float:
        path, branch = self.worktrees / name, f"bench/{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        command = ["git", "worktree", "add", "--quiet", "-b", branch, "--", str(path), self.commit]
        started = time.perf_counter()
        subprocess.run(command, cwd=self.repo, env=self.env, check=True)
        elapsed = time.perf_counter() - started
        self.flush_disk()
        return elapsed

    def create_worktree(self, name: str) -> float:
        path, branch = self.worktrees / name, f"bench/{name}"
        started = time.perf_counter()
        self.repository.create_worktree(path, branch, self.commit)
        elapsed = time.perf_counter() - started
        self.flush_disk()
        return elapsed

    def pool_claim(self, name: str) -> float:
        path, branch = self.worktrees / name, f"bench/{name}"
        git(self.repo, "worktree", "add", "--quiet", "--detach", "--", str(path), self.commit)
        self.flush_disk()
        command = ["git", "switch", "--quiet", "-c", branch]
        started = time.perf_counter()
        subprocess.run(command, cwd=path, env=self.env, check=True)
        elapsed = time.perf_counter() - started
        self.flush_disk()
        return elapsed

    def engine_start(self) -> tuple[float, float, float]:
        """Seconds to the first iteration's start as emitted and as a subscriber saw it, and
        the part of the first spent in the engine's own `git worktree add`."""
        self.engine_checkouts.clear()
        emitted, seen, run = self.runner.run(self._engine_start())
        (checkout,) = self.engine_checkouts
        self.runner.run(self.engine.wait(run))
        stored = self.runner.run(self.engine.store.run(run))
        if stored.iterations != 1:
            raise SystemExit(f"run {run} ended {stored.status} with {stored.iterations} iterations")
        self.flush_disk()
        return emitted, seen, checkout

    async def _engine_start(self) -> tuple[float, float, str]:
        subscription = self.engine.subscribe()
        try:
            started = time.time()
            run = await self.engine.start_run(LOOP)
            async for batch in subscription:
                for event in batch:
                    match event.payload:
                        case IterationMarked(phase="started") if event.run_id == run.id:
                            return event.ts - started, time.time() - started, run.id
        finally:
            subscription.close()
        raise SystemExit("the subscription ended before the run started")

    def close(self) -> None:
        self.runner.run(self.engine.close())


def print_table(timings: Timings, samples: int) -> None:
    raw = timings.median("raw git")
    overhead = timings.median(ENGINE_OVERHEAD)
    print()
    print(f"{samples} samples per variant, medians; ratios against the median of raw git")
    print()
    print("| variant | median ms | min ms | max ms | ÷ raw git |")
    print("|---|---:|---:|---:|---:|")
    for variant, values in timings.samples.items():
        median = timings.median(variant)
        ratio = f"+{median / raw:.3f}×" if variant == ENGINE_OVERHEAD else f"{median / raw:.2f}×"
        print(
            f"| {variant} | {median * 1000:.1f} | {min(values) * 1000:.1f} | "
            f"{max(values) * 1000:.1f} | {ratio} |"
        )
    print()
    print(
        f"engine start ÷ raw git: {timings.median(ENGINE) / raw:.2f}× measured directly; "
        f"{(raw + overhead) / raw:.3f}× as raw git plus the engine's overhead outside its checkout"
    )


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
    size = sum(f.stat().st_size for f in repo.rglob("*") if f.is_file() and ".git" not in f.parts)
    print(f"repository: {repo} ({tracked:,} files, {size / 1e6:.1f} MB)")
    config = write_config(WORK_DIR / "start-looptui.toml")

    timings = Timings()
    with asyncio.Runner() as runner:
        bench = Bench(repo, config, runner)
        print(f"Engine.open: {bench.engine_open * 1000:.1f} ms (once; not in the table)")
        variants: list[tuple[str, Callable[[str], float]]] = [
            ("raw git", bench.raw_git),
            ("create_worktree", bench.create_worktree),
        ]
        try:
            for round_number in range(args.samples + 1):
                warm_up = round_number == 0
                results: dict[str, float] = {}
                for variant, measure in variants:
                    results[variant] = measure(f"{variant.replace(' ', '-')}-{round_number}")
                emitted, seen, checkout = bench.engine_start()
                results[ENGINE] = emitted
                results["engine start (seen by subscriber)"] = seen
                results[ENGINE_OVERHEAD] = emitted - checkout
                results["pool claim (raw git switch -c)"] = bench.pool_claim(f"pool-{round_number}")
                line = ", ".join(f"{name} {value * 1000:.0f}" for name, value in results.items())
                print(f"{'warm-up' if warm_up else f'round {round_number}'}: {line} ms", flush=True)
                if not warm_up:
                    for variant, seconds in results.items():
                        timings.add(variant, seconds)
        finally:
            bench.close()
    print_table(timings, args.samples)
    reset_repo(repo)


if __name__ == "__main__":
    main()
