"""Lifecycle hooks: parsed from `[hooks]` tables, run as real shell commands on a real run's
events with the event as JSON on stdin, refusing a run's start or a merge with exit 2, and
recorded (redacted) in the store."""

from __future__ import annotations

import asyncio
import json
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env, git, make_repo, run_cli
from looptui.console import render_event
from looptui.engine import Engine, EventKind, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME, ConfigError, HookConfig, HookEvent
from looptui.engine.errors import HookRefused
from looptui.engine.secrets import REDACTED
from looptui.protocol.events import Event, HookRan
from process_support import wait_for_exit

PY = sys.executable
# Appends the JSON it reads on stdin, with its tag, its environment's LOOPTUI_* and its
# working directory, as one line of the file it is given.
RECORDER = """\
import json, os, sys
payload = json.load(sys.stdin)
payload["tag"] = sys.argv[2]
payload["env"] = {k: v for k, v in os.environ.items() if k.startswith("LOOPTUI_")}
payload["pwd"] = os.getcwd()
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(payload) + "\\n")
"""
# Iteration 1 changes nothing (the check fails); iteration 2 creates done.txt (it passes).
AGENT = (
    "import os, pathlib\n"
    "if os.environ['LOOPTUI_ITERATION'] == '2': pathlib.Path('done.txt').write_text('ok')\n"
)


def config(tmp_path: Path, global_hooks: dict[str, Any], **loop: Any) -> dict[str, Any]:
    marker = tmp_path / "agent-ran"
    agent = f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n" + loop.pop("agent", AGENT)
    return {
        "hooks": global_hooks,
        "agents": {"agent": {"kind": "command", "command": [PY, "-c", agent]}},
        "loops": {
            "job": {
                "prompt": "Create done.txt.",
                "agent": "agent",
                "checks": [{"name": "done", "run": "test -f done.txt"}],
                "max_iterations": 3,
                **loop,
            }
        },
    }


def recorder(tmp_path: Path, tag: str) -> str:
    script = tmp_path / "record_hook.py"
    script.write_text(RECORDER)
    out = tmp_path / "hooks.jsonl"
    return shlex.join([PY, str(script), str(out), tag])


def recorded(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "hooks.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def open_engine(
    tmp_path: Path, cfg: dict[str, Any], environ: dict[str, str] | None = None
) -> Engine:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, cfg)
    return await Engine.open(root, environ or cli_env(), load_config(root / CONFIG_NAME))


async def hook_events(engine: Engine, run_id: str) -> list[HookRan]:
    events = await engine.store.events(run_id, kinds=[EventKind.HOOK])
    return [event.payload for event in events if isinstance(event.payload, HookRan)]


# -- config ----------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / CONFIG_NAME
    path.write_text(
        '[agents.a]\nkind = "command"\ncommand = ["true"]\n'
        '[loops.l]\nprompt = "p"\nagent = "a"\n' + text
    )
    return path


def test_hooks_parse_as_strings_lists_and_tables_global_ones_first(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(
        '[hooks]\nrun_start = "echo start"\n'
        'run_end = ["echo one", { command = "echo two", timeout = "30s" }]\n'
        '[hooks.before_merge]\ncommand = "./check-merge.sh"\ntimeout = "500ms"\n'
        '[agents.a]\nkind = "command"\ncommand = ["true"]\n'
        '[loops.l]\nprompt = "p"\nagent = "a"\n'
        '[loops.l.hooks]\nrun_end = "echo mine"\nverdict = []\n'
        '[loops.other]\nprompt = "p"\nagent = "a"\n'
    )
    config = load_config(path)
    assert config.hooks == (
        HookConfig(HookEvent.RUN_START, "echo start", 60.0),
        HookConfig(HookEvent.RUN_END, "echo one", 60.0),
        HookConfig(HookEvent.RUN_END, "echo two", 30.0),
        HookConfig(HookEvent.BEFORE_MERGE, "./check-merge.sh", 0.5),
    )
    assert config.loops["l"].hooks == (*config.hooks, HookConfig(HookEvent.RUN_END, "echo mine"))
    assert config.loops["other"].hooks == config.hooks
    assert config.hooks_of("gone") == config.hooks  # a run whose loop was removed since


def test_event_names_go_to_the_wire_in_claude_codes_casing() -> None:
    names = [event.wire_name for event in HookEvent]
    assert names == ["RunStart", "IterationEnd", "Verdict", "RunEnd", "NeedsReview", "BeforeMerge"]
    assert [event for event in HookEvent if event.blocking] == [
        HookEvent.RUN_START,
        HookEvent.BEFORE_MERGE,
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[hooks]\non_merge = "x"\n',
            r"hooks\.on_merge: unknown hook event \(expected one of run_start, iteration_end, "
            r"verdict, run_end, needs_review, before_merge\)$",
        ),
        (
            '[loops.l.hooks]\nafter_merge = "x"\n',
            r"loops\.l\.hooks\.after_merge: unknown hook event \(expected one of run_start, ",
        ),
        ("[hooks]\nrun_end = 3\n", r"hooks\.run_end: expected a command string.*got 3$"),
        ('[hooks]\nrun_end = [""]\n', r"hooks\.run_end\[0\]: expected a non-empty string"),
        (
            '[hooks]\nrun_end = [{ command = "x", timeout = "soon" }]\n',
            r"hooks\.run_end\[0\]\.timeout: expected a positive duration",
        ),
        (
            '[hooks]\nrun_end = [{ command = "x", shell = "bash" }]\n',
            r"hooks\.run_end\[0\]\.shell: unknown key \(expected one of command, timeout\)",
        ),
        ('[hooks]\nrun_end = [{ timeout = "1s" }]\n', r"hooks\.run_end\[0\]\.command: expected"),
        ('hooks = "echo"\n', r"hooks: expected a table"),
    ],
)
def test_bad_hooks_are_one_line_errors_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    if text.startswith("[loops.l.hooks]"):
        path = write_config(tmp_path, text)
    else:  # a top-level key goes before the tables
        path = write_config(tmp_path, "")
        path.write_text(text + path.read_text())
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


# -- a real run ------------------------------------------------------------------------------


async def test_every_event_fires_with_its_payload_global_hooks_first(tmp_path: Path) -> None:
    everything = {event.value: recorder(tmp_path, "global") for event in HookEvent}
    cfg = config(tmp_path, everything, hooks={"run_end": recorder(tmp_path, "loop")})
    engine = await open_engine(tmp_path, cfg)
    try:
        run = await engine.start_run("job")
        final = await asyncio.wait_for(engine.wait(run.id), 60)
        assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
        commit = await engine.merge(run.id, squash=True)
        ran = await hook_events(engine, run.id)
    finally:
        await engine.close()

    seen = recorded(tmp_path)
    assert [(p["hook_event_name"], p["iteration"], p["tag"]) for p in seen] == [
        ("RunStart", 0, "global"),
        ("Verdict", 1, "global"),
        ("IterationEnd", 1, "global"),
        ("Verdict", 2, "global"),
        ("IterationEnd", 2, "global"),
        ("NeedsReview", 2, "global"),
        ("RunEnd", 2, "global"),
        ("RunEnd", 2, "loop"),
        ("BeforeMerge", 2, "global"),
    ]
    start, verdict1, end1, verdict2, end2, review, run_end, _, merge = seen
    for payload in seen:
        assert payload["run_id"] == run.id and payload["loop"] == "job"
        assert payload["branch"] == run.branch and payload["base_branch"] == "main"
        assert payload["worktree"] == run.worktree
        assert payload["cwd"] == payload["pwd"] == run.worktree
        event = HookEvent(payload["env"]["LOOPTUI_EVENT"])
        assert event.wire_name == payload["hook_event_name"]
        assert payload["env"]["LOOPTUI_RUN_ID"] == run.id
        assert payload["env"]["LOOPTUI_WORKTREE"] == run.worktree
    assert start["status"] == "running"
    assert verdict1["done"] is False and verdict1["outcome"] == "not done"
    assert any("done" in reason for reason in verdict1["reasons"]) and verdict1["flags"] == []
    assert verdict2["done"] is True and verdict2["evaluator"] == "checks"
    assert end1["checks_passed"] is False and end1["commit"] is None
    assert end1["checks"] == [{"name": "done", "passed": False, "exit_code": 1, "timed_out": False}]
    assert end2["checks_passed"] is True and end2["done"] is True
    assert end2["commit"] and end2["diff"] == {"files": 1, "added": 1, "removed": 0}
    assert review["status"] == run_end["status"] == "succeeded"
    assert run_end["error"] is None and run_end["iterations"] == 2
    assert merge["status"] == "succeeded" and merge["mode"] == "squash"
    assert merge["files"] == ["done.txt"] and merge["force"] is False
    assert git(engine.repository.root, "rev-parse", "main").strip() == commit
    assert len(ran) == len(seen) and all(h.exit_code == 0 and not h.blocked for h in ran)
    assert ran[0].hook == "run_start" and ran[-1].hook == "before_merge"


async def test_exit_2_at_run_start_fails_the_run_before_any_agent_turn(tmp_path: Path) -> None:
    refuse = "echo 'not today: the lab is closed' >&2; echo 'more detail' >&2; exit 2"
    hooks = {"run_start": refuse, "run_end": recorder(tmp_path, "end")}
    engine = await open_engine(tmp_path, config(tmp_path, hooks))
    try:
        run = await engine.start_run("job")
        final = await asyncio.wait_for(engine.wait(run.id), 60)
        ran = await hook_events(engine, run.id)
    finally:
        await engine.close()
    assert final.status is RunStatus.FAILED
    assert final.error == "the run_start hook refused: not today: the lab is closed"
    assert final.iterations == 0 and not (tmp_path / "agent-ran").exists()
    assert [(h.hook, h.exit_code, h.blocked) for h in ran] == [
        ("run_start", 2, True),
        ("run_end", 0, False),
    ]
    assert ran[0].stderr == "not today: the lab is closed\nmore detail"
    [end] = recorded(tmp_path)
    assert end["status"] == "failed" and end["error"] == final.error


async def test_exit_2_before_merge_refuses_the_merge_and_leaves_the_base_alone(
    tmp_path: Path,
) -> None:
    refuse = "echo 'release freeze until Monday' >&2; exit 2"
    engine = await open_engine(tmp_path, config(tmp_path, {"before_merge": refuse}))
    root = engine.repository.root
    main_before = git(root, "rev-parse", "main")
    try:
        run = await engine.start_run("job")
        assert (await asyncio.wait_for(engine.wait(run.id), 60)).status is RunStatus.SUCCEEDED
        with pytest.raises(HookRefused) as refused:
            await engine.merge(run.id)
        assert str(refused.value) == "the before_merge hook refused: release freeze until Monday"
        after = await engine.history.run(run.id)
        [hook] = await hook_events(engine, run.id)
    finally:
        await engine.close()
    assert after.status is RunStatus.SUCCEEDED and Path(run.worktree).is_dir()
    assert hook.blocked and hook.exit_code == 2
    assert git(root, "rev-parse", "main") == main_before
    assert git(root, "status", "--porcelain") == ""

    # the command line says the same in one line, and its log shows the hook
    result = run_cli(root, "merge", run.id)
    assert result.code != 0
    assert "the before_merge hook refused: release freeze until Monday" in result.stderr
    assert git(root, "rev-parse", "main") == main_before
    log = run_cli(root, "log", run.id)
    assert log.code == 0, log.stderr
    assert "hook before_merge" in log.stdout and "refused (exit 2)" in log.stdout


async def test_a_failing_iteration_end_hook_is_recorded_and_does_not_block(
    tmp_path: Path,
) -> None:
    hooks = {"iteration_end": "echo 'could not post' >&2; exit 1"}
    engine = await open_engine(tmp_path, config(tmp_path, hooks))
    try:
        run = await engine.start_run("job")
        final = await asyncio.wait_for(engine.wait(run.id), 60)
        ran = await hook_events(engine, run.id)
    finally:
        await engine.close()
    assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
    assert [(h.hook, h.exit_code, h.blocked) for h in ran] == [("iteration_end", 1, False)] * 2
    assert ran[0].stderr == "could not post"


async def test_a_hook_past_its_timeout_is_killed_and_recorded_timed_out(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    slow = f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; wait"
    hooks = {"run_start": {"command": slow, "timeout": "0.5s"}}
    engine = await open_engine(tmp_path, config(tmp_path, hooks))
    try:
        run = await engine.start_run("job")
        final = await asyncio.wait_for(engine.wait(run.id), 60)
        [hook] = await hook_events(engine, run.id)
    finally:
        await engine.close()
    # a timeout is no refusal, even on an event that can be refused
    assert final.status is RunStatus.SUCCEEDED
    assert hook.timed_out and hook.exit_code is None and not hook.blocked
    assert 0.5 <= hook.duration < 10
    assert "timed out after 0.5s" in hook.stderr
    assert await wait_for_exit(int(pid_file.read_text()), within=5)


async def test_a_secret_a_hook_prints_or_refuses_with_is_redacted(tmp_path: Path) -> None:
    secret = "tok-hooks-0123456789abcdef"
    hooks = {"run_start": 'echo "using $DEPLOY_TOKEN"; echo "bad token $DEPLOY_TOKEN" >&2; exit 2'}
    engine = await open_engine(
        tmp_path, config(tmp_path, hooks), environ={**cli_env(), "DEPLOY_TOKEN": secret}
    )
    try:
        run = await engine.start_run("job")
        final = await asyncio.wait_for(engine.wait(run.id), 60)
        [hook] = await hook_events(engine, run.id)
    finally:
        await engine.close()
    assert hook.stdout == f"using {REDACTED}" and hook.stderr == f"bad token {REDACTED}"
    assert final.error == f"the run_start hook refused: bad token {REDACTED}"
    with sqlite3.connect(engine.repository.store_path) as db:
        rows = db.execute("SELECT data FROM events").fetchall()
        runs = db.execute("SELECT error FROM runs").fetchall()
    assert rows and not any(secret in row[0] for row in rows)
    assert not any(secret in (row[0] or "") for row in runs)


# -- how logs show it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (HookRan("run_end", "notify-send done", 0, duration=0.25), "ok in 0.2s"),
        (
            HookRan("iteration_end", "post", 1, stderr="connecting\nno route to host"),
            "failed (exit 1): no route to host",
        ),
        (
            HookRan("before_merge", "./freeze", 2, blocked=True, stderr="frozen\nuntil Monday"),
            "refused (exit 2): frozen",
        ),
        (HookRan("verdict", "sleep 9", None, timed_out=True, duration=0.5), "timed out after 0.5s"),
    ],
)
def test_a_hook_shows_in_one_line(hook: HookRan, expected: str) -> None:
    line = render_event(Event("r1", hook, iteration=1))
    assert line is not None and "\n" not in line.plain
    assert line.plain.startswith(f"  ↪ hook {hook.hook} ") and line.plain.endswith(expected)


@pytest.mark.usefixtures("service")
def test_a_merge_refused_by_a_hook_in_the_service_says_why_in_one_line(tmp_path: Path) -> None:
    refuse = "echo 'release freeze until Monday' >&2; echo second line >&2; exit 2"
    root = make_repo(
        tmp_path / "repo", {"README.md": "hi\n"}, config(tmp_path, {"before_merge": refuse})
    )
    ran = run_cli(root, "run", "job")
    assert ran.code == 0, ran.stderr
    status = run_cli(root, "status", "--json")
    [run] = json.loads(status.stdout)
    main_before = git(root, "rev-parse", "main")
    result = run_cli(root, "merge", run["id"])
    assert (result.code, result.stderr) == (
        2,
        "looptui: the before_merge hook refused: release freeze until Monday\n",
    )
    assert git(root, "rev-parse", "main") == main_before
    assert json.loads(run_cli(root, "status", "--json").stdout)[0]["status"] == "succeeded"
