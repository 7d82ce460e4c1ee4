"""What memory adds to an iteration: choosing the loop's accepted notes from the store and
building the prompt with them, against building the prompt without them.

The store is a real one (`Store.open`: the real schema and indexes), filled with `LOOPS`
loops of notes: each run's checkpoints (kept), its lessons (proposed), and for each loop
`ACCEPTED` accepted notes of 150-600 characters, the loop under test being the largest.
Measured, `--repeat` times after a warm-up, the median kept:

- `without`: `build_prompt` for iteration 3 of a run, with its own notes, two failing checks
  and a verdict: what an iteration paid before memory;
- `with`: `remembered()` (the query for the loop's accepted notes, the ranking, the bound,
  the count of uses written) and then `build_prompt` carrying them: what it pays now;
- `raw`: the same SELECT through the sqlite3 module on its own connection, read to the end.

The target: `with` - `without` under 50 ms. The work directory is removed at the end.

Run by hand: `.venv/bin/python bench/memory.py [--notes N] [--repeat K]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from looptui.engine.config import LoopConfig
from looptui.engine.memory.keeping import remembered
from looptui.engine.memory.recall import CANDIDATES
from looptui.engine.models import CheckResult, Note, NoteKind, Verdict
from looptui.engine.prompting import build_prompt
from looptui.engine.store import Store
from machine import header

LOOPS = 50
RUNS_PER_LOOP = 40
ACCEPTED = 400  # per loop; the loop under test has ten times as many
BASE_TIME = 1_790_000_000.0
WORDS = (
    "check tests failed with assert import module the fixture timeout parser config run "
    "iteration changed file src tests passed after reviewer rejected debug print lesson "
    "evaluator reasons next steps problems tried progress flaky network retry cache"
).split()


def sentence(rng: random.Random, low: int, high: int) -> str:
    length = rng.randint(low, high)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:length]


def fill(path: Path, notes_per_loop: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("BEGIN")
    runs, notes = [], []
    for loop in range(LOOPS):
        name = f"loop-{loop}"
        accepted = ACCEPTED * (10 if loop == 0 else 1)
        for index in range(RUNS_PER_LOOP):
            run_id = f"{loop:04x}{index:04x}"
            runs.append((run_id, name, f"looptui/{run_id}", BASE_TIME + index))
        for index in range(notes_per_loop):
            run_id = f"{loop:04x}{index % RUNS_PER_LOOP:04x}"
            status, kind = "kept", "attempt"
            if index < accepted:
                status, kind = "accepted", "lesson"
            elif index % 10 == 0:
                status, kind = "proposed", "lesson"
            notes.append(
                (
                    run_id,
                    1 + index % 5,
                    kind,
                    sentence(rng, 150, 600),
                    BASE_TIME + index,
                    name,
                    status,
                    json.dumps(
                        [{"kind": "check", "run_id": run_id, "iteration": 1, "detail": "x"}]
                    ),
                    1 + index % 3,
                )
            )
    db.executemany(
        "INSERT INTO runs (id, loop, agent, status, prompt, base_branch, base_commit, branch, "
        "worktree, max_iterations, created_at) VALUES (?, ?, 'agent', 'failed', 'fix it', "
        "'main', 'abc', ?, '/tmp/x', 5, ?)",
        runs,
    )
    db.executemany(
        "INSERT INTO notes (run_id, iteration, kind, text, created_at, loop, status, sources, "
        "seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        notes,
    )
    db.execute("COMMIT")
    db.close()


def iteration_inputs() -> tuple[list[Note], list[CheckResult], Verdict]:
    rng = random.Random(3)
    own = [
        Note("00000000", n, NoteKind.ATTEMPT, sentence(rng, 300, 900), BASE_TIME + n)
        for n in (1, 2)
    ]
    failing = [
        CheckResult(
            "tests", "pytest -q", 1, 1.2, "\n".join(sentence(rng, 40, 120) for _ in range(60))
        ),
        CheckResult("lint", "ruff check", 1, 0.3, sentence(rng, 200, 400)),
    ]
    verdict = Verdict(False, "checks", reasons=("tests failed",), next_steps=("fix tests",))
    return own, failing, verdict


async def measure(path: Path, repeat: int) -> None:
    store = await Store.open(path)
    loop = LoopConfig(name="loop-0", prompt="Make the tests pass.", agent="agent")
    own, failing, verdict = iteration_inputs()
    without, with_memory, chosen_counts = [], [], []
    try:
        for attempt in range(repeat + 1):
            start = time.perf_counter()
            build_prompt(loop.prompt, 3, own, failing, verdict)
            plain = time.perf_counter() - start
            start = time.perf_counter()
            memory = await remembered(store, loop, "00000000", failing)
            prompt = build_prompt(loop.prompt, 3, own, failing, verdict, remembered=memory)
            full = time.perf_counter() - start
            if attempt:  # the first is the warm-up
                without.append(plain * 1000)
                with_memory.append(full * 1000)
                chosen_counts.append(len(memory))
        assert "What earlier runs of this loop learned" in prompt
    finally:
        await store.close()
    raw = []
    with sqlite3.connect(path) as db:
        for _ in range(repeat):
            start = time.perf_counter()
            db.execute(
                "SELECT * FROM notes WHERE loop = ? AND status = 'accepted' "
                "ORDER BY id DESC LIMIT ?",
                ("loop-0", CANDIDATES),
            ).fetchall()
            raw.append((time.perf_counter() - start) * 1000)
    added = statistics.median(with_memory) - statistics.median(without)
    print(f"\n## one iteration's prompt, {repeat} times (ms)\n")
    print(f"{'variant':<40}{'median':>9}{'p90':>9}")
    for name, values in (
        ("without memory (build_prompt)", without),
        ("with memory (remembered + build_prompt)", with_memory),
        ("raw SELECT of the candidates (sqlite3)", raw),
    ):
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        print(f"{name:<40}{statistics.median(values):>9.2f}{p90:>9.2f}")
    print(
        f"\nadded by memory (median with - median without): {added:.2f} ms "
        f"(target < 50 ms); notes carried: {statistics.median(chosen_counts):.0f}, "
        f"prompt {len(prompt):,} characters"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=6_000, help="notes per loop")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(header("memory.py"))
    work = Path(tempfile.mkdtemp(prefix="looptui-memory-bench-"))
    try:
        path = work / "store.db"
        asyncio.run(_create(path))
        start = time.perf_counter()
        fill(path, args.notes)
        with sqlite3.connect(path) as db:
            notes = db.execute("SELECT count(*) FROM notes").fetchone()[0]
            accepted = db.execute(
                "SELECT count(*) FROM notes WHERE loop = 'loop-0' AND status = 'accepted'"
            ).fetchone()[0]
        print(
            f"\n## store: {notes:,} notes over {LOOPS} loops; the loop under test has "
            f"{accepted:,} accepted; filled in {time.perf_counter() - start:.1f} s"
        )
        asyncio.run(measure(path, args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ncleanup: {'removed' if not work.exists() else 'LEFT'} {work}")


async def _create(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


if __name__ == "__main__":
    main()
