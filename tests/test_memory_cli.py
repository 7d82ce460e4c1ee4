"""`looptui memory` as a user runs it: after a run whose check keeps failing, the lesson it
proposed is listed with its sources, exported, accepted, edited and deleted, with the service
running and with `--no-service`; bad input is one line and exit 2."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import Result, cli_env, kill_services, make_repo, run_cli

pytestmark = pytest.mark.timeout(240)
PY = sys.executable
EDITOR = textwrap.dedent(
    """\
    import pathlib, sys
    path = pathlib.Path(sys.argv[1])
    path.write_text("Look for done.txt before anything else.\\n# kept: " + path.read_text())
    """
)


def failing_repo(root: Path) -> Path:
    """A `job` loop whose command agent never makes its check pass (so the run fails and
    proposes a lesson), and an `other` loop."""
    agent = {"kind": "command", "command": [PY, "-c", "print('looking around')"]}
    loop = {
        "prompt": "Create done.txt.",
        "agent": "agent",
        "checks": [{"name": "done", "run": "test -f done.txt || { echo 'no done.txt'; exit 1; }"}],
        "max_iterations": 2,
    }
    config = {"agents": {"agent": agent}, "loops": {"job": loop, "other": {**loop}}}
    return make_repo(root, {"README.md": "hi\n", "tools/editor.py": EDITOR}, config)


def ok(result: Result) -> str:
    assert result.code == 0, result
    return result.stdout


def refused(result: Result, *words: str) -> str:
    """The one line of a refusal (exit 2, no traceback), holding `words`."""
    assert result.code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("looptui: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def notes(repo: Path, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(ok(run_cli(repo, "memory", *args, "--json")))
    return found


def fail_a_run(repo: Path, *global_options: str) -> str:
    result = run_cli(repo, *global_options, "run", "job")
    assert result.code == 1, result  # the goal was not met
    (run,) = json.loads(ok(run_cli(repo, *global_options, "status", "--json")))
    assert run["status"] == "failed"
    return str(run["id"])


def test_list_export_accept_edit_delete_without_the_service(tmp_path: Path) -> None:
    repo = failing_repo(tmp_path / "repo")
    assert ok(run_cli(repo, "--no-service", "memory")).startswith("no lessons or accepted notes")
    run_id = fail_a_run(repo, "--no-service")

    text = ok(run_cli(repo, "--no-service", "memory"))
    lines = text.splitlines()
    head = lines[0].split()
    assert head[0].startswith("#") and head[1:3] == ["proposed", "lesson"]
    assert f"loop job  run {run_id}" in lines[0] and "seen in 1 run, used 0 times" in lines[0]
    assert lines[1].startswith("    Check done (`test -f done.txt")
    assert "  source: run · run " + run_id + ": failed" in lines
    assert f"  source: check · run {run_id} · iteration 2: done: failed (exit 1)" in lines
    lesson_id = int(head[0][1:])
    assert "  kept  " not in text  # the checkpoints only with --all

    every = notes(repo, "--all")
    assert [n["id"] for n in every] == sorted((n["id"] for n in every), reverse=True)
    assert {n["kind"] for n in every} >= {"lesson", "problem"} and len(every) == 3
    (lesson,) = notes(repo)
    assert lesson["id"] == lesson_id and lesson["status"] == "proposed"
    assert lesson["loop"] == "job" and lesson["run_id"] == run_id and lesson["seen"] == 1
    assert [s["kind"] for s in lesson["sources"]] == ["run", "check", "check"]
    assert notes(repo, "job") == [lesson] and notes(repo, run_id[:4]) == [lesson]
    assert notes(repo, "other") == []  # per loop

    document = ok(run_cli(repo, "memory", "--markdown", "--all"))
    assert document.startswith("# Memory of repo\n\n## Loop job\n\n")
    assert f"### Note {lesson_id}: lesson, proposed\n\nCheck done (`test -f" in document
    assert f"- Sources:\n  - run · run {run_id}: failed\n  - check · run {run_id}" in document
    assert document.count("### Note ") == 3

    assert ok(run_cli(repo, "memory", "accept", f"#{lesson_id}")) == (
        f"accepted note #{lesson_id} (lesson of job)\n"
    )
    assert notes(repo)[0]["status"] == "accepted"
    kept = [n for n in every if n["kind"] != "lesson"]
    assert len(notes(repo)) == 1  # a checkpoint shows without --all once accepted:
    ok(run_cli(repo, "memory", "accept", str(kept[0]["id"])))
    assert [n["id"] for n in notes(repo)] == [lesson_id, kept[0]["id"]]

    ok(run_cli(repo, "memory", "edit", str(lesson_id), "--text", "Create done.txt first."))
    (edited, _) = notes(repo)
    assert edited["text"] == "Create done.txt first." and edited["sources"][-1]["kind"] == "human"
    env = {**cli_env(), "EDITOR": f"{PY} tools/editor.py"}
    assert run_cli(repo, "memory", "edit", str(lesson_id), env=env).code == 0
    assert notes(repo)[0]["text"] == (
        "Look for done.txt before anything else.\n# kept: Create done.txt first."
    )
    unchanged = run_cli(repo, "memory", "edit", str(lesson_id), env={**env, "EDITOR": "true"})
    assert unchanged.code == 1 and "unchanged" in unchanged.stderr

    refused(run_cli(repo, "memory", "delete", str(lesson_id)), "--yes")  # no terminal to ask
    assert len(notes(repo)) == 2
    assert ok(run_cli(repo, "memory", "delete", "--yes", str(lesson_id))) == (
        f"deleted note #{lesson_id}\n"
    )
    assert [n["id"] for n in notes(repo, "--all")] == [k["id"] for k in kept]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    repo = failing_repo(tmp_path / "repo")
    fail_a_run(repo)
    (lesson,) = notes(repo)
    refused(run_cli(repo, "memory", "nope"), "no loop or run matches 'nope'", "job, other")
    refused(run_cli(repo, "memory", "accept", "999"), "no note #999")
    refused(run_cli(repo, "memory", "accept", str(lesson["id"]), "x1"), "'x1' is not a note id")
    assert notes(repo)[0]["status"] == "proposed"  # nothing accepted when one id is bad
    refused(run_cli(repo, "memory", "delete", "--yes", str(lesson["id"]), "999"), "no note #999")
    assert len(notes(repo)) == 1
    refused(run_cli(repo, "memory", "edit", str(lesson["id"]), "--text", " "), "cannot be empty")
    refused(run_cli(repo, "memory", "--json", "--markdown"), "one of --json and --markdown")
    # two runs whose ids share a prefix: the prefix is ambiguous
    asyncio.run(_add_runs(repo, "abc00001", "abc00002"))
    refused(run_cli(repo, "memory", "abc"), "matches several runs", "abc00001")


async def _add_runs(repo: Path, *run_ids: str) -> None:
    from looptui.engine.store import Store
    from looptui.engine.workspace import Repository
    from test_store import a_run

    store = await Store.open(Repository(repo).store_path)
    try:
        for run_id in run_ids:
            await store.insert_run(a_run(run_id, loop="job"))
    finally:
        await store.close()


def test_with_the_service_running_the_commands_go_through_it(tmp_path: Path, service: None) -> None:
    repo = failing_repo(tmp_path / "repo")
    run_id = fail_a_run(repo, "--no-service")
    assert ok(run_cli(repo, "memory", "job")).startswith("#")
    status = json.loads(run_cli(repo, "service", "status", "--json").stdout)
    assert status == {"running": False}  # reading the memory started no service

    ok(run_cli(repo, "service", "start"))
    try:
        pid = json.loads(ok(run_cli(repo, "service", "status", "--json")))["pid"]
        (lesson,) = notes(repo, run_id)
        ok(run_cli(repo, "memory", "accept", str(lesson["id"])))
        ok(run_cli(repo, "memory", "edit", str(lesson["id"]), "--text", "Through the service."))
        (now,) = notes(repo, "job")
        assert now["status"] == "accepted" and now["text"] == "Through the service."
        refused(run_cli(repo, "memory", "accept", "999"), "no note #999")  # its line, as is
        ok(run_cli(repo, "memory", "delete", "-y", str(lesson["id"])))
        assert notes(repo) == []
        assert json.loads(ok(run_cli(repo, "service", "status", "--json")))["pid"] == pid
    finally:
        kill_services(tmp_path)
