"""Event ingest: looptui's Store against raw sqlite3 `executemany`, in the same run.

What is measured, per sample, on a fresh database file:

- `store`: N events go through `Store.emit()` (the path the loop runner uses: queue, writer
  task, redaction, JSON, batched transactions through aiosqlite). The clock runs from the
  first `emit()` to the return of `Store.close()`, which writes every pending event and closes
  the database. Opening the store (and creating its schema) is outside the clock. The emitter
  yields to the event loop every `--chunk` events, as a run that awaits between lines does,
  and keeps at most `--pace` events emitted but not yet written: the store drops output
  lines (by design, with a note) when more than 20,000 wait, and a dropped line would fail
  the benchmark. The store's `events_written` tells the emitter how far the writer is.
- `raw schema`: the same rows (JSON already serialized, ids already chosen) inserted with one
  `executemany` in one transaction into a database built from the store's own migrations, so
  the index and the FTS5 trigger cost the same; the clock includes `close()`.
- `raw schema, 500/txn`: the same, committed every 500 rows (the store's batch size), to show
  what batching alone costs SQLite.
- `raw bare`: one transaction into a bare `events` table (no index, no FTS).

All variants use the store's pragmas: journal_mode=WAL, synchronous=NORMAL, busy_timeout=10000,
foreign_keys=ON. Variants are interleaved, each round starting one variant later, so that
drift in the machine hits each alike; medians are reported. After every sample the rows are counted
per (run, kind), and the FTS index is counted, so a lost event fails the benchmark. Database
files are kept until the end (a fresh file per sample, deleted together afterwards), since on
a disk that discards online, writing soon after deleting costs extra kernel time.

Run by hand: `.venv/bin/python bench/ingest.py [--events N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looptui.engine.models import RunStatus
from looptui.engine.secrets import Redactor
from looptui.engine.store import Store
from looptui.engine.store.schema import MIGRATIONS, SEARCHABLE_KINDS
from looptui.protocol.events import (
    AgentSaid,
    AnyPayload,
    OutputPrinted,
    StatusChanged,
    TokensUsed,
    ToolAnswered,
    ToolCalled,
    payload_fields,
)

try:
    from looptui.engine.store.writer import BATCH_SIZE
except ImportError:  # the store before its writer had a module of its own
    from looptui.engine.store.store import BATCH_SIZE  # type: ignore[attr-defined,no-redef]

Emitted = tuple[str, AnyPayload, int]  # emit()'s arguments: run, payload, iteration
WORK_DIR = Path(__file__).resolve().parent / ".work"
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)
BARE_SCHEMA = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, "
    "iteration INTEGER NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL)"
)
INSERT = "INSERT INTO events (id, run_id, iteration, ts, kind, data) VALUES (?, ?, ?, ?, ?, ?)"
# A user's environment as the engine sees it: two secrets the redactor must look for.
ENVIRON = {
    "ANTHROPIC_API_KEY": "sk-ant-bench-0123456789abcdefghijklmnop",
    "GITHUB_TOKEN": "ghp_benchbenchbenchbenchbench0123456789",
    "PATH": "/usr/bin:/bin",
}
BATCHED = f"raw schema, {BATCH_SIZE}/txn"
VARIANTS = ("store", "raw schema", BATCHED, "raw bare")
WORDS = (
    "def class return import self value result error test assert path file line build "
    "check config worktree branch commit store event agent loop iteration None True False "
    "failed passed collected running python pytest module function argument expected got"
).split()


@dataclass(frozen=True)
class Sample:
    variant: str
    seconds: float


def make_events(count: int, runs: int, seed: int) -> list[Emitted]:
    """A deterministic mix shaped like agent runs: mostly output lines, some messages and tools."""
    rng = random.Random(seed)
    run_ids = [f"{rng.getrandbits(32):08x}" for _ in range(runs)]

    def words(low: int, high: int) -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))

    events: list[Emitted] = []
    payload: AnyPayload
    for index in range(count):
        run_id = run_ids[index % runs]
        iteration = 1 + index // (count // 10 + 1)
        roll = rng.random()
        if roll < 0.60:
            payload = OutputPrinted(words(4, 18), stream="stdout")
        elif roll < 0.70:
            payload = AgentSaid(words(10, 60))
        elif roll < 0.80:
            payload = ToolCalled("edit_file", input={"path": "src/app.py", "new": words(5, 30)})
        elif roll < 0.90:
            payload = ToolAnswered("bash", output=words(10, 80), is_error=False)
        elif roll < 0.98:
            payload = TokensUsed(rng.randint(1, 9999), output_tokens=42, cost_usd=0.01)
        else:
            payload = StatusChanged(RunStatus.RUNNING)
        events.append((run_id, payload, iteration))
    return events


def expected_counts(
    events: list[Emitted],
) -> tuple[Counter[tuple[str, str]], int]:
    counts = Counter((run_id, payload.kind.value) for run_id, payload, _ in events)
    searchable = sum(1 for _, payload, _ in events if payload.kind.value in SEARCHABLE_KINDS)
    return counts, searchable


def verify(path: Path, counts: Counter[tuple[str, str]], searchable: int | None) -> None:
    """Fail loudly unless every event is in the table (and, with FTS, in the index)."""
    with sqlite3.connect(path) as db:
        found = Counter(
            {
                (run_id, kind): n
                for run_id, kind, n in db.execute(
                    "SELECT run_id, kind, count(*) FROM events GROUP BY run_id, kind"
                )
            }
        )
        distinct = db.execute("SELECT count(DISTINCT id) FROM events").fetchone()[0]
        indexed = (
            db.execute("SELECT count(*) FROM events_fts_docsize").fetchone()[0]
            if searchable is not None
            else None
        )
    db.close()
    total = sum(counts.values())
    if found != counts or distinct != total:
        lost = total - sum(found.values())
        raise SystemExit(f"{path.name}: events lost or duplicated ({lost} missing of {total})")
    if indexed != searchable:
        raise SystemExit(f"{path.name}: FTS index holds {indexed}, expected {searchable}")


async def store_sample(
    path: Path, events: list[Emitted], chunk: int, pace: int
) -> tuple[float, int, int]:
    """Seconds from first emit to close, and the store's event and batch counters."""
    store = await Store.open(path, Redactor.from_environment(ENVIRON))
    emit = store.emit
    start = time.perf_counter()
    for offset in range(0, len(events), chunk):
        for run_id, payload, iteration in events[offset : offset + chunk]:
            emit(run_id, payload, iteration)
        await asyncio.sleep(0)
        # A producer that outran the writer by more than the store's bound on pending events
        # would have output lines dropped by design; this one waits instead, polling the one
        # public sign of the writer's progress (the store has no event to wait on for it).
        while pace and offset + chunk - store.events_written > pace:
            await asyncio.sleep(0.001)
    await store.close()
    elapsed = time.perf_counter() - start
    dropped = getattr(store, "events_dropped", 0)
    if dropped:
        raise SystemExit(f"the store dropped {dropped} of {len(events)} events as overload")
    return elapsed, store.events_written, store.batches_written


def raw_rows(events: list[Emitted]) -> list[tuple[Any, ...]]:
    now = time.time()
    return [
        (
            index + 1,
            run_id,
            iteration,
            now,
            payload.kind.value,
            json.dumps(payload_fields(payload), ensure_ascii=False),
        )
        for index, (run_id, payload, iteration) in enumerate(events)
    ]


def raw_sample(
    path: Path,
    rows: list[tuple[Any, ...]],
    schema: Callable[[sqlite3.Connection], None],
    batch: int | None = None,
) -> float:
    """Seconds to insert `rows` with executemany, one transaction per `batch` rows (all in
    one when None), plus close."""
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        db.execute(pragma)
    schema(db)
    step = batch or len(rows)
    start = time.perf_counter()
    for offset in range(0, len(rows), step):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(INSERT, rows[offset : offset + step])
        db.execute("COMMIT")
    db.close()
    return time.perf_counter() - start


def store_schema(db: sqlite3.Connection) -> None:
    for number, script in enumerate(MIGRATIONS, start=1):
        db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


def bare_schema(db: sqlite3.Connection) -> None:
    db.execute(BARE_SCHEMA)


def fresh(directory: Path, name: str) -> Path:
    path = directory / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def profile_store(directory: Path, events: list[Emitted], chunk: int, pace: int) -> None:
    """One store sample under cProfile (the event loop's thread only; SQLite runs in
    aiosqlite's thread), top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(store_sample(fresh(directory, "profile"), events, chunk, pace))
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="events per sample")
    parser.add_argument("--repeat", type=int, default=5, help="samples per variant")
    parser.add_argument("--runs", type=int, default=8, help="run ids the events are spread over")
    parser.add_argument("--chunk", type=int, default=50, help="emits between event-loop yields")
    parser.add_argument(
        "--pace",
        type=int,
        default=10_000,
        help="most events emitted but not yet written (the store drops output lines past "
        "20,000 pending); 0 emits everything at once",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="profile one store sample and stop")
    args = parser.parse_args()

    WORK_DIR.mkdir(exist_ok=True)
    events = make_events(args.events, args.runs, args.seed)
    counts, searchable = expected_counts(events)
    rows = raw_rows(events)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=WORK_DIR) as scratch:
        directory = Path(scratch)
        if args.profile:
            profile_store(directory, events, args.chunk, args.pace)
            return
        samples: list[Sample] = []
        batches = 0

        def store(path: Path) -> float:
            nonlocal batches
            seconds, written, batches = asyncio.run(
                store_sample(path, events, args.chunk, args.pace)
            )
            if written != len(events):
                raise SystemExit(f"store counted {written} events written, expected {len(events)}")
            return seconds

        measures: dict[str, tuple[Callable[[Path], float], int | None]] = {
            "store": (store, searchable),
            "raw schema": (lambda path: raw_sample(path, rows, store_schema), searchable),
            BATCHED: (lambda path: raw_sample(path, rows, store_schema, BATCH_SIZE), searchable),
            "raw bare": (lambda path: raw_sample(path, rows, bare_schema), None),
        }
        for round_number in range(args.repeat):
            # Each round starts one variant later, so no variant always runs first.
            order = (
                VARIANTS[round_number % len(VARIANTS) :] + VARIANTS[: round_number % len(VARIANTS)]
            )
            for variant in order:
                measure, indexed = measures[variant]
                slug = "".join(c if c.isalnum() else "-" for c in variant)
                path = fresh(directory, f"{slug}-{round_number}")
                samples.append(Sample(variant, measure(path)))
                verify(path, counts, indexed)
            line = ", ".join(f"{s.variant} {s.seconds:.3f}s" for s in samples[-len(VARIANTS) :])
            print(f"round {round_number + 1}/{args.repeat}: {line} ({batches} store batches)")

    medians = {
        variant: statistics.median(s.seconds for s in samples if s.variant == variant)
        for variant in VARIANTS
    }
    print()
    print(f"{args.events:,} events, {args.repeat} samples each, medians; no event lost")
    print()
    print("| variant | median s | events/s | store as % of this |")
    print("|---|---:|---:|---:|")
    for variant, seconds in medians.items():
        ratio = medians[variant] / medians["store"]
        print(f"| {variant} | {seconds:.3f} | {args.events / seconds:,.0f} | {ratio:.0%} |")


if __name__ == "__main__":
    main()
