"""Search over 1,000,000 stored events: looptui's `Store.search` against the same FTS5 query
through the sqlite3 module, on the same file.

The store is a real one: `Store.open` creates it (the real schema, FTS5 tables, views and
triggers), then the runs, events and notes go in with `executemany` in one transaction on a
plain sqlite3 connection, so the index is filled by the store's own trigger. The text is
made to look like agents' logs: output lines of 30-140 characters, agent text of a few
sentences, tool calls with their input, tool results up to 2 KB, errors, and events that are
not indexed (status, usage, iteration marks). Words are drawn from a Zipf-like vocabulary,
so that queries range from a word in a third of the events to one in a handful.

Measured, per query (each run `--repeat` times after one warm-up, the median kept):

- `looptui`: `await store.search(query, loop=..., run=..., limit=50)`, the path the CLI and
  the TUI take (aiosqlite's thread, the query built from the user's words, two FTS queries,
  the snippets and the hits);
- `raw`: the same two SQL statements `Store.search` runs, through the sqlite3 module on its
  own connection, read to the end;
- `naive`: `SELECT … snippet(…) … ORDER BY rank LIMIT 50` in one statement, a snippet cut for
  every match: what the two-step query avoids.

Reported: the median and the p90 over the queries of each variant, and each query's time.
The work directory is removed at the end.

Run by hand: `.venv/bin/python bench/search.py [--events N] [--runs R] [--repeat K]`.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from looptui.engine.store import Store
from looptui.engine.store.search import fts_query, statements
from machine import header

LOOPS = 12
NOTES_PER_RUN = 12
VOCABULARY = 20_000
RARE = ("ZeroDivisionError", "segfault", "flaky", "deadlock", "UnicodeDecodeError")
BASE_TIME = 1_790_000_000.0


def words() -> tuple[list[str], list[float]]:
    """A vocabulary of made-up identifiers and code words with Zipf-like weights (always the
    same: the queries pick from it)."""
    rng = random.Random(0)
    common = "the a to of and in is test tests file error def return import self assert".split()
    syllables = "ka lo mi nu pe ra si to vu xe za bo ce di fu ga he ji".split()
    vocab = list(common)
    while len(vocab) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        vocab.append(word + (str(rng.randint(0, 99)) if rng.random() < 0.2 else ""))
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    return vocab, weights


class Text:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vocab, weights = words()
        self.cumulative = list(__import__("itertools").accumulate(weights))

    def line(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        picked = self.rng.choices(self.vocab, cum_weights=self.cumulative, k=count)
        if self.rng.random() < 0.0005:
            picked[self.rng.randrange(count)] = self.rng.choice(RARE)
        return " ".join(picked)


def event_rows(text: Text, events: int, run_ids: list[str]) -> list[tuple[Any, ...]]:
    rng = text.rng
    rows = []
    per_run = events // len(run_ids)
    for n in range(events):
        run_id = run_ids[min(n // per_run, len(run_ids) - 1)]
        iteration = 1 + (n % per_run) * 5 // per_run
        roll = rng.random()
        if roll < 0.62:
            kind, data = "output", {"line": text.line(5, 22), "stream": "stdout"}
        elif roll < 0.72:
            kind, data = "text", {"text": text.line(15, 80)}
        elif roll < 0.80:
            kind = "tool_call"
            data = {"name": "read_file", "input": {"path": f"src/{text.line(1, 2)}.py"}}
        elif roll < 0.88:
            kind, data = "tool_result", {"name": "read_file", "output": text.line(30, 300)}
        elif roll < 0.89:
            kind, data = "error", {"message": text.line(5, 15)}
        elif roll < 0.95:
            kind, data = "usage", {"input_tokens": rng.randint(1, 9999), "output_tokens": 12}
        else:
            kind, data = "status", {"status": "running"}
        rows.append((n + 1, run_id, iteration, BASE_TIME + n * 0.01, kind, json.dumps(data)))
    return rows


def fill(path: Path, events: int, runs: int, seed: int) -> tuple[list[str], list[str]]:
    """The runs, events and notes, in one transaction; returns the run ids and loops."""
    text = Text(seed)
    loops = [f"loop-{n}" for n in range(LOOPS)]
    run_ids = [f"{n:08x}" for n in range(1, runs + 1)]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO runs (id, loop, agent, status, prompt, base_branch, base_commit, branch, "
        "worktree, max_iterations, created_at) VALUES (?, ?, 'agent', 'failed', 'fix it', "
        "'main', 'abc', ?, '/tmp/x', 5, ?)",
        [(rid, loops[n % LOOPS], f"looptui/{rid}", BASE_TIME + n) for n, rid in enumerate(run_ids)],
    )
    db.executemany(
        "INSERT INTO events (id, run_id, iteration, ts, kind, data) VALUES (?, ?, ?, ?, ?, ?)",
        event_rows(text, events, run_ids),
    )
    db.executemany(
        "INSERT INTO notes (run_id, iteration, kind, text, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (rid, 1 + k % 5, "problem", text.line(10, 40), BASE_TIME + n)
            for n, rid in enumerate(run_ids)
            for k in range(NOTES_PER_RUN)
        ],
    )
    db.execute("COMMIT")
    db.close()
    return run_ids, loops


def queries(path: Path, run_ids: list[str], loops: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """30+ queries from a word in a third of the events down to none, some filtered."""
    text = Text(7)
    vocab = text.vocab
    chosen: list[tuple[str, dict[str, Any]]] = []
    for rank in (0, 3, 10, 30, 100, 300, 1000, 3000, 10000, 19000):
        chosen.append((vocab[rank], {}))
    for rank in (5, 50, 500, 5000):
        chosen.append((f"{vocab[rank]} {vocab[rank + 1]}", {}))
    chosen += [(f'"{vocab[1]} {vocab[2]}"', {}), (f'"{vocab[200]} {vocab[201]}"', {})]
    chosen += [(vocab[40][:3] + "*", {}), (vocab[4000][:4] + "*", {})]
    chosen += [(word, {}) for word in RARE]
    chosen += [("nosuchwordanywhere", {}), ('OR NEAR( - * "', {})]
    for rank in (0, 100, 5000):
        chosen.append((vocab[rank], {"run": run_ids[len(run_ids) // 2]}))
        chosen.append((vocab[rank], {"loop": loops[3]}))
    return chosen


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def raw_statements(query: str, filters: dict[str, Any], db: sqlite3.Connection) -> list[Any]:
    """The statements `Store.search` runs, through the sqlite3 module (filters included)."""
    found: list[Any] = []
    for sql, params in statements(fts_query(query), 50, filters.get("run"), filters.get("loop")):
        found += db.execute(sql, params).fetchall()
    return found


NAIVE = (
    "SELECT rowid, snippet(events_fts, 0, '[', ']', '…', 16) FROM events_fts "
    "WHERE events_fts MATCH ? ORDER BY rank LIMIT 50"
)


async def measure(path: Path, chosen: list[tuple[str, dict[str, Any]]], repeat: int) -> None:
    store = await Store.open(path)
    raw = sqlite3.connect(path)
    rows: list[tuple[str, float, float, float, int]] = []
    try:
        for query, filters in chosen:
            times: dict[str, list[float]] = {"looptui": [], "raw": [], "naive": []}
            hits = 0
            for attempt in range(repeat + 1):
                start = time.perf_counter()
                try:
                    hits = len(await store.search(query, limit=50, **filters))
                except Exception as exc:  # an empty query: a one-line error, timed too
                    hits = -1
                    assert "nothing to search for" in str(exc), exc
                looptui = time.perf_counter() - start
                start = time.perf_counter()
                if hits >= 0:
                    raw_statements(query, filters, raw)
                plain = time.perf_counter() - start
                start = time.perf_counter()
                if hits >= 0 and not filters:
                    raw.execute(NAIVE, (fts_query(query),)).fetchall()
                naive = time.perf_counter() - start
                if attempt:  # the first is the warm-up
                    times["looptui"].append(looptui)
                    times["raw"].append(plain)
                    times["naive"].append(naive)
            med = {name: statistics.median(values) * 1000 for name, values in times.items()}
            label = query + "".join(f" --{k} {v}" for k, v in filters.items())
            rows.append((label, med["looptui"], med["raw"], med["naive"], hits))
    finally:
        raw.close()
        await store.close()
    print(f"\n## queries: {len(rows)}, each the median of {repeat} after a warm-up (ms)\n")
    print(f"{'query':<44} {'looptui':>8} {'raw':>8} {'naive':>9} {'hits':>5}")
    for label, ours, plain, naive, hits in rows:
        naive_text = f"{naive:9.1f}" if naive else f"{'-':>9}"
        print(f"{label[:44]:<44} {ours:8.1f} {plain:8.1f} {naive_text} {hits:>5}")
    print()
    for index, name in ((1, "looptui"), (2, "raw"), (3, "naive")):
        values = [row[index] for row in rows if row[index] or name != "naive"]
        print(
            f"- {name}: median {statistics.median(values):.1f} ms, "
            f"p90 {percentile(values, 0.9):.1f} ms, max {max(values):.1f} ms "
            f"over {len(values)} queries"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(header("search.py"))
    work = Path(tempfile.mkdtemp(prefix="looptui-search-bench-"))
    try:
        path = work / "store.db"
        asyncio.run(_create(path))
        start = time.perf_counter()
        run_ids, loops = fill(path, args.events, args.runs, seed=1)
        filled = time.perf_counter() - start
        with sqlite3.connect(path) as db:
            indexed = db.execute("SELECT count(*) FROM events_fts_docsize").fetchone()[0]
            events = db.execute("SELECT count(*) FROM events").fetchone()[0]
            notes = db.execute("SELECT count(*) FROM notes").fetchone()[0]
        size = sum(f.stat().st_size for f in work.iterdir()) / 1e6
        print(
            f"\n## store: {events:,} events ({indexed:,} indexed), {notes:,} notes, "
            f"{len(run_ids)} runs of {len(loops)} loops; {size:.0f} MB; filled in {filled:.1f} s"
        )
        asyncio.run(measure(path, queries(path, run_ids, loops), args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ncleanup: {'removed' if not work.exists() else 'LEFT'} {work}")


async def _create(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


if __name__ == "__main__":
    main()
