"""Triggers at scale: a simulated day, an event storm, and file change → agent started.

- `day`: 50 loops with cron, every and watch triggers, under every overlap and catch-up
  policy, through one simulated day on an injected clock (a FakeClock moved 60 s at a time,
  about 20 ms of real time per simulated minute, so that real runs overlap). Three times at
  random, the service stops abruptly (its scheduler's and runs' tasks cancelled, whatever
  they were doing) and comes back up to three simulated hours later on the same store. Then
  every fire time of the day, computed independently from the triggers, is looked up in the
  ledger. It reports duplicate runs (two runs for one fire time), fire times the ledger
  does not account for, runs with no firing behind them, and catch-ups that break their
  policy. All four must be 0.
- `storm`: 10,000 files written at once under a watched glob, while the loop's run goes:
  every changed path must reach a firing's payload, every firing is in the ledger, and the
  runs stay within the policy (queue: at most one running and one waiting).
- `latency`: on a 10,000-file repository, a watched file is touched and the time until the
  agent process starts is taken from the agent's own clock, less the trigger's debounce;
  with and without a pool of prepared worktrees (`settings.pool_size`), beside raw
  `git worktree add` in the same run. Medians.

Agents are real processes (`sh -c`), the repositories real git, the store real SQLite.
Everything is made under bench/.work/ and removed at the end (worktrees and branches too).

Run by hand: `.venv/bin/python bench/triggers.py [day|storm|latency|all]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import tomli_w

from looptui.engine import Engine, LooptuiError, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.store.ledger import Outcome
from looptui.engine.triggers.clock import FakeClock, SystemClock
from looptui.engine.triggers.model import Cron, Every
from looptui.engine.triggers.next_fire import due_between, seed_of
from looptui.engine.workspace import Repository
from looptui.protocol.events import EventKind
from looptui.service.scheduler import Scheduler
from machine import header
from start import IDENTITY, WORK_DIR, prepare_repo  # shared with the other benchmarks

DAY_START = 1_798_761_600.0  # 2027-01-01 00:00 UTC
OVERLAPS = ("skip", "queue", "replace", "parallel")


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, **IDENTITY}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=environ(), check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path, files: dict[str, str], config: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / CONFIG_NAME).write_text(tomli_w.dumps(config))
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "bench")
    return root


async def close_quietly(
    scheduler: Scheduler, engine: Engine, status: RunStatus = RunStatus.CANCELLED
) -> None:
    await scheduler.close()
    await engine.close(status)


async def reopen(root: Path, config: Any, clock: FakeClock) -> tuple[Engine, Scheduler]:
    """The service's start: the runs it interrupted resume, then its scheduler starts."""
    engine = await Engine.open(root, environ(), config)
    for run in await engine.history.runs([RunStatus.INTERRUPTED]):
        with contextlib.suppress(LooptuiError):
            await engine.resume(run.id, automatic=True)
    scheduler = Scheduler(engine, clock)
    await scheduler.start()
    return engine, scheduler


# -- the simulated day ------------------------------------------------------------------------


def day_config(loops: int) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for index in range(loops):
        kind = index % 5
        if kind == 0:
            trigger: dict[str, Any] = {"cron": "*/30 * * * *"}
        elif kind == 1:
            trigger = {"cron": "15 * * * *", "timezone": "Europe/Paris"}
        elif kind == 2:
            trigger = {"every": "45m"}
        elif kind == 3:
            trigger = {"every": "2h", "jitter": "10m"}
        else:
            trigger = {"watch": [f"inbox/{index}/*.txt"], "debounce": "0.05s"}
        overlap = OVERLAPS[index % len(OVERLAPS)]
        policy: dict[str, Any] = {"overlap": overlap}
        if overlap == "parallel":
            policy["parallel_max"] = 2
        policy["catch_up"] = "skip" if (index // 4) % 2 else "run_once"
        if policy["catch_up"] == "run_once":
            policy["catch_up_max_age"] = "1h" if index % 3 == 0 else "24h"
        table[f"loop{index:02d}"] = {
            "prompt": "{fired_by}",
            "agent": "work",
            "max_iterations": 1,
            "triggers": [trigger],
            "policy": policy,
        }
    return {
        # a run takes a little real time (a simulated minute or two): runs overlap
        "agents": {"work": {"kind": "command", "command": ["sh", "-c", "sleep 0.03"]}},
        "loops": table,
        "settings": {"max_parallel": 6},
    }


async def bench_day(seed: int = 7, loops: int = 50) -> dict[str, Any]:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="triggers-day-", dir=WORK_DIR))
    files = {"README.md": "day\n"} | {f"inbox/{i}/.keep": "" for i in range(loops) if i % 5 == 4}
    root = make_repo(work / "repo", files, day_config(loops))
    config = load_config(root / CONFIG_NAME)
    clock = FakeClock(DAY_START)
    kills = sorted(rng.sample(range(60, 1380), 3))  # minutes of the day
    downs = {minute: rng.randint(20, 180) for minute in kills}
    started = time.perf_counter()
    engine = await Engine.open(root, environ(), config)
    scheduler = Scheduler(engine, clock)
    await scheduler.start()
    windows: list[tuple[float, float]] = []  # (went down, came up), simulated
    touched = Counter[str]()
    minute = 0
    try:
        while minute < 24 * 60:
            if minute in downs:
                went_down = clock.now()
                # abruptly: the scheduler's and the runs' tasks cancelled mid-flight, the runs
                # recorded interrupted (as when the service stops) to resume when it is back
                await close_quietly(scheduler, engine, RunStatus.INTERRUPTED)
                clock.advance(downs[minute] * 60)
                minute += downs[minute]
                windows.append((went_down, clock.now()))
                engine, scheduler = await reopen(root, config, clock)
                continue
            clock.advance(60)
            minute += 1
            if minute % 37 == 0:  # a file change for a few watch loops
                for index in rng.sample([i for i in range(loops) if i % 5 == 4], 3):
                    path = root / "inbox" / str(index) / f"m{minute}.txt"
                    path.write_text(str(minute))
                    touched[f"loop{index:02d}"] += 1
            await asyncio.sleep(0.02)
        await scheduler.idle()
        for run_id in engine.active_run_ids():
            await engine.wait(run_id)
        await asyncio.sleep(0.5)  # the feed's last batch settles the last firings
        await scheduler.idle()
    finally:
        await close_quietly(scheduler, engine)
    seconds = time.perf_counter() - started
    result = audit_day(root, config, windows, clock.now())
    result.update(real_seconds=seconds, windows=windows, touched=sum(touched.values()))
    forget(work, root)
    return result


def audit_day(
    root: Path, config: Any, windows: list[tuple[float, float]], end: float
) -> dict[str, Any]:
    db = sqlite3.connect(root / ".git" / "looptui" / "store.db")
    db.row_factory = sqlite3.Row
    firings = [dict(row) for row in db.execute("SELECT * FROM firings ORDER BY id")]
    runs = [dict(row) for row in db.execute("SELECT id, loop FROM runs")]
    anchors = {
        (row["loop"], row["trigger"]): row["anchor"] for row in db.execute("SELECT * FROM schedule")
    }
    db.close()
    import json

    by_run = Counter(f["run_id"] for f in firings if f["run_id"])
    duplicate_runs = sum(count - 1 for count in by_run.values() if count > 1)
    fired_runs = set(by_run)
    runs_without_firing = [run["id"] for run in runs if run["id"] not in fired_runs]
    # every fire time of the day, from the triggers alone, accounted for once in the ledger
    unaccounted = 0
    double_counted = 0
    bad_catch_up = 0
    expected_total = 0
    for loop in config.loops.values():
        trigger = loop.triggers[0]
        if not isinstance(trigger, Cron | Every):
            continue
        anchor = anchors.get((loop.name, trigger.name))
        due = due_between(
            trigger, DAY_START, end, seed_of(loop.name, trigger), anchor=anchor, limit=10_000
        )
        expected_total += len(due)
        rows = [f for f in firings if f["loop"] == loop.name and f["trigger"] == trigger.name]
        named = Counter(f["due_at"] for f in rows if f["outcome"] != Outcome.MISSED)
        missed = sum(
            json.loads(f["payload"]).get("missed", 0)
            for f in rows
            if f["outcome"] == Outcome.MISSED
        )
        fired = sum(1 for when in due if named.get(when))
        double_counted += sum(count - 1 for count in named.values() if count > 1)
        unaccounted += len(due) - fired - missed
        for went_down, came_up in windows:
            during = [when for when in due if went_down < when <= came_up]
            if not during:
                continue
            fired_then = [when for when in during if named.get(when)]
            age = came_up - during[-1]
            if loop.policy.catch_up == "skip" or age > loop.policy.catch_up_max_age:
                bad_catch_up += len(fired_then)  # none may run
            else:
                bad_catch_up += 0 if fired_then == [during[-1]] else 1  # the newest, once
    outcomes = Counter(f["outcome"] for f in firings)
    failed = Counter((f["reason"] or "")[:60] for f in firings if f["outcome"] == Outcome.FAILED)
    return {
        "loops": len(config.loops),
        "fire times expected (time triggers)": expected_total,
        "firings in the ledger": len(firings),
        "runs": len(runs),
        "outcomes": dict(sorted(outcomes.items())),
        "why failed (most common)": failed.most_common(4),
        "duplicate runs": duplicate_runs + double_counted,
        "fire times not in the ledger": unaccounted,
        "runs without a firing": len(runs_without_firing),
        "catch-ups against their policy": bad_catch_up,
    }


# -- the storm ----------------------------------------------------------------------------------


async def bench_storm(count: int = 10_000) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="triggers-storm-", dir=WORK_DIR))
    config = {
        "agents": {"work": {"kind": "command", "command": ["sh", "-c", "sleep 1"]}},
        "loops": {
            "storm": {
                "prompt": "{changed_paths}",
                "agent": "work",
                "max_iterations": 1,
                "triggers": [{"watch": ["storm/**"], "debounce": "0.5s"}],
            }
        },
    }
    root = make_repo(work / "repo", {"storm/.keep": ""}, config)
    engine = await Engine.open(root, environ(), load_config(root / CONFIG_NAME))
    scheduler = Scheduler(engine, SystemClock())
    await scheduler.start()
    written: set[str] = set()
    most_active = 0
    started = time.perf_counter()
    try:
        first = root / "storm" / "first.txt"  # the loop's run goes while the storm comes
        first.write_text("0")
        written.add("storm/first.txt")
        while not await engine.history.runs():
            await asyncio.sleep(0.01)
        for index in range(count):
            (root / "storm" / f"f{index:05d}.txt").write_text(str(index))
            written.add(f"storm/f{index:05d}.txt")
        stored_paths: set[str] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            active = [r for r in await engine.history.runs() if r.status.is_active]
            most_active = max(most_active, len(active))
            rows = await engine.store.firings("storm", limit=10_000)
            stored_paths = {p for f in rows for p in f.payload.get("changed_paths", ())}
            if written <= stored_paths and not active:
                break
            await asyncio.sleep(0.1)
        rows = await engine.store.firings("storm", limit=10_000)
        runs = await engine.history.runs()
    finally:
        await close_quietly(scheduler, engine)
    seconds = time.perf_counter() - started
    lost = written - stored_paths
    outcomes = Counter(str(f.outcome) for f in rows)
    forget(work, root)
    return {
        "files changed": len(written),
        "firings": len(rows),
        "outcomes": dict(sorted(outcomes.items())),
        "runs": len(runs),
        "most runs active at once": most_active,
        "paths lost": len(lost),
        "seconds": round(seconds, 2),
    }


# -- file change → agent started ---------------------------------------------------------------


async def bench_latency(samples: int = 15, files: int = 10_000) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="triggers-latency-", dir=WORK_DIR))
    marker = work / "started"
    debounce = 0.2
    results: dict[str, Any] = {"samples": samples, "files": files, "debounce_s": debounce}
    agent = ["sh", "-c", f'date +%s.%N >> "{marker}"']
    # start.py's cached repository (10,000 files, 50 MB, packed), cloned with hard links
    source = prepare_repo(files, 50, 1)
    root = work / "repo"
    git(work, "clone", "--quiet", "--local", str(source), str(root))
    git(root, "checkout", "--quiet", "-B", "main")
    (root / "watched").mkdir()
    (root / "watched" / "file.txt").write_text("0\n")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "a watched file")
    raw: list[float] = []
    for index in range(samples):  # raw git, the floor of a checkout
        path = work / f"raw-{index}"
        began = time.perf_counter()
        git(root, "worktree", "add", "--quiet", "-b", f"bench-raw-{index}", str(path), "main")
        raw.append(time.perf_counter() - began)
    for index in range(samples):
        git(root, "worktree", "remove", "--force", str(work / f"raw-{index}"))
        git(root, "branch", "-D", f"bench-raw-{index}")
    results["raw git worktree add (ms)"] = round(statistics.median(raw) * 1000, 1)
    for pool in (0, 2):
        config = {
            "agents": {"work": {"kind": "command", "command": agent}},
            "loops": {
                "react": {
                    "prompt": "{changed_paths}",
                    "agent": "work",
                    "max_iterations": 1,
                    "triggers": [{"watch": ["watched/*.txt"], "debounce": f"{debounce}s"}],
                }
            },
            "settings": {"max_parallel": 4} | ({"pool_size": pool} if pool else {}),
        }
        (root / CONFIG_NAME).write_text(tomli_w.dumps(config))
        try:
            loaded = load_config(root / CONFIG_NAME)
        except Exception as exc:  # no pool in this looptui: say so and measure without
            results[f"pool {pool}"] = f"not measured: {exc}"
            continue
        engine = await Engine.open(root, environ(), loaded)
        scheduler = Scheduler(engine, SystemClock())
        await scheduler.start()
        latencies: list[float] = []
        stages: dict[str, list[float]] = defaultdict(list)
        try:
            for index in range(samples):
                if engine.pool is not None:  # full between samples, as the service keeps it
                    await engine.pool.fill("main")
                    await asyncio.sleep(1.5)  # outside the clock: its index settles
                marker.unlink(missing_ok=True)
                target = root / "watched" / "file.txt"
                target.write_text(f"{pool} {index}\n")
                changed = os.stat(target).st_mtime
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # the agent's own clock, once it wrote it
                    if marker.exists() and marker.read_text().strip():
                        break
                    await asyncio.sleep(0.002)
                agent_started = float(marker.read_text().split()[0])
                latencies.append(agent_started - changed - debounce)
                for run_id in engine.active_run_ids():
                    await engine.wait(run_id)
                await engine.store.flush()
                (firing,) = await engine.store.firings("react", limit=1)
                assert firing.run_id is not None
                run = await engine.store.run(firing.run_id)
                events = await engine.store.events(run.id, kinds=[EventKind.ITERATION])
                began = events[0].ts
                stages["watcher: change → firing, beyond the debounce"].append(
                    firing.fired_at - changed - debounce
                )
                stages["firing → run recorded"].append(run.created_at - firing.fired_at)
                stages["run recorded → iteration began (worktree)"].append(began - run.created_at)
                stages["iteration began → agent started"].append(agent_started - began)
        finally:
            await close_quietly(scheduler, engine)
        key = f"file change → agent started, beyond the debounce, pool {pool} (ms)"
        results[key] = round(statistics.median(latencies) * 1000, 1)
        results[key.replace("(ms)", "p90 (ms)")] = round(
            statistics.quantiles(latencies, n=10)[-1] * 1000, 1
        )
        for stage, values in stages.items():
            results[f"  pool {pool}, {stage} (ms)"] = round(statistics.median(values) * 1000, 1)
    forget(work, root)
    return results


def forget(work: Path, root: Path) -> None:
    """Remove the benchmark's directory and the worktrees its runs had (they live in
    looptui's state directory, not beside the repository)."""
    cleanup(root)
    shutil.rmtree(Repository(root).worktrees_dir, ignore_errors=True)
    shutil.rmtree(work)


def cleanup(root: Path) -> None:
    """Remove every worktree and looptui branch the benchmark made."""
    for line in git(root, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree ") and Path(line[9:]) != root:
            subprocess.run(
                ["git", "worktree", "remove", "--force", line[9:]], cwd=root, check=False
            )
    git(root, "worktree", "prune")
    for branch in git(root, "branch", "--format=%(refname:short)").split():
        if branch != "main":
            git(root, "branch", "-D", branch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "which", nargs="?", default="all", choices=("day", "storm", "latency", "all")
    )
    args = parser.parse_args()
    WORK_DIR.mkdir(exist_ok=True)
    print(header("triggers.py"))
    chosen = ("day", "storm", "latency") if args.which == "all" else (args.which,)
    for name in chosen:
        bench = {"day": bench_day, "storm": bench_storm, "latency": bench_latency}[name]
        result = asyncio.run(bench())
        print(f"\n## {name}\n")
        for key, value in result.items():
            print(f"- {key}: {value}")
        sys.stdout.flush()
    leftovers = list(WORK_DIR.glob("triggers-*"))
    print(f"\ncleanup: {len(leftovers)} work directories left (worktrees and branches removed)")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
