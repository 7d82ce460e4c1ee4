"""Search over everything stored: the real `looptui search` (with and without the service),
the store's ranking and filters, hostile queries, secrets, and the TUI's search screen."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from conftest import make_repo, run_cli
from looptui.engine.errors import RunNotFound, SearchError
from looptui.engine.models import Note, NoteKind, Run, RunStatus
from looptui.engine.store import Store
from looptui.engine.store.schema import MIGRATIONS
from looptui.engine.store.search import fts_query
from looptui.protocol.events import OutputPrinted, StatusChanged, ToolCalled, VerdictGiven
from looptui.tui.screens.run import RunScreen
from looptui.tui.screens.search import SearchScreen
from tui_support import demo_repository, open_app, until

HOSTILE = [
    '"',
    '""',
    "*",
    "-",
    "NEAR(",
    "NEAR(a b",
    "OR",
    "a OR b",
    "NOT a",
    "a AND",
    '"unbalanced quote',
    "col:value",
    "{text}: x",
    "^start",
    "a + b",
    "'; DROP TABLE events; --",
    "x*y*",
    "(((",
    "\x00",
    "‘smart quotes’ «guillemets»",
]


def a_run(run_id: str, loop: str = "fix") -> Run:
    return Run(
        id=run_id,
        loop=loop,
        agent="a",
        status=RunStatus.QUEUED,
        prompt="p",
        base_branch="main",
        base_commit="abc",
        branch=f"looptui/{run_id}",
        worktree=f"/tmp/{run_id}",
        max_iterations=3,
        created_at=time.time(),
    )


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = await Store.open(tmp_path / "s.db")
    yield store  # type: ignore[misc]
    await store.close()


# -- the CLI, on real runs ---------------------------------------------------------------------


def leaky_repo(root: Path, secret: str) -> Path:
    """A loop whose agent prints a rare word, a JSON-looking line and its secret token."""
    script = (
        "import os; print('the quokka escaped from calc.py'); "
        "print('stream line json'); print('token:', os.environ['SERVICE_TOKEN'])"
    )
    config = {
        "agents": {
            "leaky": {
                "kind": "command",
                "command": [sys.executable, "-c", script],
                "env": {"SERVICE_TOKEN": secret},
            }
        },
        "loops": {
            "leak": {"prompt": "leak", "agent": "leaky", "max_iterations": 1, "checks": ["true"]},
            "other": {"prompt": "x", "agent": "leaky", "max_iterations": 1, "checks": ["true"]},
        },
    }
    return make_repo(root, {"README.md": "hi\n"}, config)


def check_cli_search(repo: Path, secret: str) -> None:
    first = run_cli(repo, "run", "leak")
    assert first.code == 0, first.stderr
    second = run_cli(repo, "run", "other")
    assert second.code == 0, second.stderr
    runs = {run["loop"]: run["id"] for run in json.loads(run_cli(repo, "status", "--json").stdout)}

    found = run_cli(repo, "search", "quokka")
    assert found.code == 0, found.stderr
    # each run's output line, and the agent's last words and the progress note that quote it
    lines = found.stdout.splitlines()
    assert {line.split()[0] for line in lines} == set(runs.values())
    assert all("quokka" in line for line in lines)
    output = [line for line in lines if "  output  " in line]
    assert len(output) == 2 and all("the quokka escaped from calc.py" in x for x in output)

    as_json = json.loads(run_cli(repo, "search", "quokka", "--loop", "leak", "--json").stdout)
    assert {(hit["run"], hit["loop"]) for hit in as_json} == {(runs["leak"], "leak")}
    [hit] = [hit for hit in as_json if hit["kind"] == "output"]
    start, end = hit["marks"][0]
    assert hit["snippet"][start:end] == "quokka" and hit["time"].endswith("+00:00")
    other = run_cli(repo, "search", "quokka", "--run", runs["other"][:6], "--json")
    assert {hit["run"] for hit in json.loads(other.stdout)} == {runs["other"]}

    # the keys of the stored JSON ("line", "stream") are not text: only the line that says them
    stream = json.loads(run_cli(repo, "search", "stream", "--json").stdout)
    assert stream and all("stream line json" in hit["snippet"] for hit in stream)
    assert {hit["snippet"] for hit in stream if hit["kind"] == "output"} == {"stream line json"}

    missing = run_cli(repo, "search", "wombat")
    assert missing.code == 1 and "no match for 'wombat'" in missing.stdout
    for args, says in [
        (("search", "quokka", "--run", "nosuchrun"), "no run matches 'nosuchrun'"),
        (("search", "quokka", "--loop", "nosuchloop"), "no stored run belongs to loop"),
        (("search", "  "), "nothing to search for"),
        (("search", '"'), "nothing to search for"),
    ]:
        refused = run_cli(repo, *args)
        assert refused.code == 2 and refused.stdout == "", (args, refused)
        assert refused.stderr.count("\n") == 1 and says in refused.stderr, refused.stderr

    # a secret the agent printed was redacted before it was stored: search cannot find it
    for query in (secret, secret.split("-")[-1], f'"{secret}"'):
        leaked = run_cli(repo, "search", query, "--json")
        assert leaked.code == 1 and secret not in leaked.stdout, query
    assert run_cli(repo, "search", "REDACTED").code == 0


def test_the_cli_finds_a_word_from_an_old_runs_log_without_the_service(tmp_path: Path) -> None:
    secret = "svc-secret-7f3a9c2e51"
    check_cli_search(leaky_repo(tmp_path / "repo", secret), secret)


@pytest.mark.usefixtures("service")
def test_the_cli_finds_a_word_from_an_old_runs_log_through_the_service(tmp_path: Path) -> None:
    secret = "svc-secret-0b8d6e4f29"
    repo = leaky_repo(tmp_path / "repo", secret)
    assert run_cli(repo, "service", "start").code == 0
    check_cli_search(repo, secret)
    status = run_cli(repo, "service", "status")
    assert status.code == 0 and "no looptui service" not in status.stdout
    assert run_cli(repo, "service", "stop").code == 0


def test_hostile_queries_never_crash_the_cli(tmp_path: Path) -> None:
    repo = leaky_repo(tmp_path / "repo", "svc-secret-5c5c5c5c5c")
    assert run_cli(repo, "run", "leak").code == 0
    for query in HOSTILE:
        if "\x00" in query:
            continue  # no argv holds a NUL
        result = run_cli(repo, "search", query)
        assert result.code in (0, 1, 2), (query, result)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, query
        if result.code == 2:
            assert "nothing to search for" in result.stderr, (query, result.stderr)


# -- the store ---------------------------------------------------------------------------------


async def test_a_note_that_matches_twice_ranks_above_one_that_matches_once(store: Store) -> None:
    await store.insert_run(a_run("r1"))
    await store.add_note(Note("r1", 1, NoteKind.PROBLEM, "the flaky fixture broke a test run"))
    await store.add_note(Note("r1", 2, NoteKind.LESSON, "the flaky fixture is flaky under load"))
    store.emit("r1", OutputPrinted("an unrelated line about nothing at all here"))
    await store.flush()
    hits = await store.search("flaky fixture")
    assert [(hit.source, hit.kind, hit.iteration) for hit in hits] == [
        ("note", "lesson", 2),
        ("note", "problem", 1),
    ]
    assert hits[0].rank < hits[1].rank
    first = hits[0]
    assert [first.snippet[a:b] for a, b in first.marks] == ["flaky", "fixture", "flaky"]


async def test_events_rank_by_how_well_they_match_and_read_as_text(store: Store) -> None:
    await store.insert_run(a_run("r1"))
    store.emit("r1", OutputPrinted("deadlock " * 3 + "in the worker pool"), 1)
    store.emit("r1", OutputPrinted("a deadlock maybe, among many other words of a long line"), 1)
    store.emit("r1", ToolCalled("read_file", {"path": "src/deadlock.py", "limit": 3}), 2)
    store.emit("r1", VerdictGiven(False, "judge", reasons=("the deadlock is still there",)), 2)
    store.emit("r1", StatusChanged(RunStatus.RUNNING))  # not indexed: no text
    await store.flush()
    hits = await store.search("deadlock")
    assert hits[0].snippet == "deadlock deadlock deadlock in the worker pool"
    kinds = {hit.kind: hit.snippet for hit in hits}
    assert kinds["tool_call"] == "read_file src/deadlock.py"  # the input's text, no JSON keys
    assert kinds["verdict"] == "judge the deadlock is still there"
    assert await store.search("limit") == [] and await store.search("path") == []


async def test_filters_by_run_and_loop(store: Store) -> None:
    for run_id, loop in (("aa11", "fix"), ("aa22", "fix"), ("bb33", "docs")):
        await store.insert_run(a_run(run_id, loop))
        store.emit(run_id, OutputPrinted(f"walrus sighted in {run_id}"))
        await store.add_note(Note(run_id, 1, NoteKind.PROGRESS, f"walrus noted by {run_id}"))
    await store.flush()
    everything = await store.search("walrus")
    assert len(everything) == 6
    by_loop = await store.search("walrus", loop="fix")
    assert {hit.run_id for hit in by_loop} == {"aa11", "aa22"} and len(by_loop) == 4
    by_run = await store.search("walrus", run="aa2")
    assert {(hit.run_id, hit.source) for hit in by_run} == {("aa22", "event"), ("aa22", "note")}
    assert await store.search("walrus", loop="docs", run="aa11") == []
    assert len(await store.search("walrus", limit=2)) == 2
    with pytest.raises(RunNotFound, match="several runs"):
        await store.search("walrus", run="aa")
    with pytest.raises(RunNotFound, match="no stored run belongs to loop 'nope'"):
        await store.search("walrus", loop="nope")


async def test_hostile_queries_are_words_not_syntax(store: Store) -> None:
    await store.insert_run(a_run("r1"))
    store.emit("r1", OutputPrinted("NEAR the OR gate, a - b AND NOT c: col:value"))
    await store.flush()
    for query in HOSTILE:
        try:
            hits = await store.search(query)
        except SearchError as exc:
            assert "nothing to search for" in str(exc)
            assert not any(ch.isalnum() for ch in query), query
        else:
            assert all(hit.run_id == "r1" for hit in hits), query
    # operators are plain words that must be there
    assert len(await store.search("OR NEAR")) == 1 and await store.search("NEAR xor") == []
    assert len(await store.search('"the OR gate"')) == 1
    assert await store.search('"gate OR the"') == []


def test_fts_query_quotes_every_term() -> None:
    assert fts_query('fix "a phrase" pre* x"y') == (
        'text : "fix" AND text : "a phrase" AND text : "pre" * AND text : "x""y"'
    )
    assert fts_query('"unclosed phrase') == 'text : "unclosed phrase"'
    for empty in ("", "   ", '"', "* - ()", '""'):
        with pytest.raises(SearchError):
            fts_query(empty)


async def test_a_store_of_schema_10_has_its_events_indexed_as_text(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # what the release of schema 10 left on disk
        for script in MIGRATIONS[:10]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 10")
        db.execute(
            "INSERT INTO runs (id, loop, agent, status, prompt, base_branch, base_commit, "
            "branch, worktree, max_iterations, created_at) VALUES ('r1', 'fix', 'a', 'failed', "
            "'p', 'main', 'abc', 'b', '/tmp/w', 1, 0)"
        )
        db.execute(
            "INSERT INTO events (run_id, iteration, ts, kind, data) VALUES "
            """('r1', 1, 5.0, 'output', '{"line": "an old platypus line", "stream": "stdout"}')"""
        )
    store = await Store.open(path)
    try:
        [hit] = await store.search("platypus", loop="fix")
        assert (hit.run_id, hit.snippet, hit.ts) == ("r1", "an old platypus line", 5.0)
        assert await store.search("stdout") == []
    finally:
        await store.close()


# -- the TUI -----------------------------------------------------------------------------------


async def test_the_tui_searches_across_runs_and_opens_the_hit(tmp_path: Path) -> None:
    repo, config = demo_repository(tmp_path / "demo")
    async with open_app(repo, config, tmp_path) as (app, pilot):
        run = await app.engine.start_run("fix-mean")
        await app.engine.wait(run.id)
        offered = {command.title for command in app.get_system_commands(app.screen)}
        assert "Search runs" in offered  # the palette offers it, as `?` lists it
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        for key in "ValueError":
            await pilot.press(key)
        await pilot.press("enter")
        await until(pilot, lambda: bool(screen.hits))
        assert {hit.run_id for hit in screen.hits} == {run.id}
        assert screen.query_one("#hits").has_focus
        table = screen.query_one("#hits", DataTable)
        kinds = {str(table.get_row_at(row)[3]) for row in range(table.row_count)}
        assert kinds and not any("_" in kind for kind in kinds), kinds  # words, not names
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == run.id
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        # the query can be changed; a query of punctuation alone says why nothing is searched
        await pilot.press("slash")
        screen.query_one("#query").value = '"'  # type: ignore[attr-defined]
        await pilot.press("enter")
        status = screen.query_one("#search-status")
        await until(pilot, lambda: "nothing to search for" in str(status.render()))
        assert screen.hits == []
