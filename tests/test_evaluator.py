"""The independent evaluator: a separate agent judges each iteration, and it fails closed.

The executors and evaluators here are real `command` agents (real subprocesses); the
evaluator is another backend than the replay or command executor it judges.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from conftest import BUGGY_PACKAGE, FIXER, cli_env, fixer_config, make_repo, run_cli
from looptui.engine import Engine, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.evaluator_agent import parse_verdict

# A judge that answers from a list of replies, one per question, and keeps every question.
JUDGE = textwrap.dedent(
    """\
    import json, pathlib, sys
    record = pathlib.Path(sys.argv[1])
    replies = json.loads(pathlib.Path(sys.argv[2]).read_text())
    questions = json.loads(record.read_text()) if record.exists() else []
    questions.append(sys.stdin.read())
    record.write_text(json.dumps(questions))
    reply = replies[min(len(questions), len(replies)) - 1]
    if reply == "EXIT":
        print("judge: cannot reach the model", file=sys.stderr)
        sys.exit(1)
    print(reply)
    """
)
DONE = json.dumps(
    {
        "done": True,
        "confidence": 0.9,
        "reasons": ["rectangle multiplies"],
        "citations": [{"path": "shapes/area.py", "line": 2}],
    }
)
NOT_YET = json.dumps(
    {"done": False, "confidence": 0.8, "reasons": ["no docstring"], "next_steps": ["Add one"]}
)


def judged_repo(tmp_path: Path, replies: list[str], **loop: Any) -> tuple[Path, Path]:
    """The buggy package with a `fix` loop judged by the scripted judge; returns the repo and
    the file where the judge keeps the questions it was asked."""
    questions = tmp_path / "questions.json"
    (tmp_path / "replies.json").write_text(json.dumps(replies))
    (tmp_path / "judge.py").write_text(JUDGE)
    config = fixer_config(evaluator="judge", **loop)
    replay = [
        {"log": "thinking out loud about rectangles"},
        {"edit": {"path": "shapes/area.py", "old": "width + height", "new": "width * height"}},
        {"message": "Fixed rectangle() by multiplying."},
    ]
    (tmp_path / "replay.jsonl").write_text("\n".join(json.dumps(step) for step in replay))
    config["agents"]["replayer"] = {
        "kind": "replay",
        "script": str(tmp_path / "replay.jsonl"),
        "speed": 0,
    }
    config["agents"]["judge"] = {
        "kind": "command",
        "command": [
            sys.executable,
            str(tmp_path / "judge.py"),
            str(questions),
            str(tmp_path / "replies.json"),
        ],
    }
    files = {**BUGGY_PACKAGE, "tools/fix.py": FIXER}
    return make_repo(tmp_path / "repo", files, config), questions


async def run_fix(repo: Path) -> tuple[Engine, str]:
    engine = await Engine.open(repo, cli_env(), load_config(repo / CONFIG_NAME))
    run = await engine.start_run("fix")
    await engine.wait(run.id)
    return engine, run.id


async def test_the_evaluator_judges_from_the_diff_not_the_transcript(tmp_path: Path) -> None:
    repo, questions = judged_repo(tmp_path, [DONE], agent="replayer")
    engine, run_id = await run_fix(repo)
    try:
        run = await engine.history.run(run_id)
        assert run.status is RunStatus.SUCCEEDED
        [(_, verdict)] = await engine.history.verdicts(run_id)
        assert (verdict.evaluator, verdict.done, verdict.confidence) == ("judge", True, 0.9)
        assert verdict.reasons == ("rectangle multiplies", "cites shapes/area.py:2")  # checked
    finally:
        await engine.close()
    [question] = json.loads(questions.read_text())
    assert "Make the tests pass." in question  # the goal
    assert "+    return width * height" in question  # the diff
    assert "tests (`python -m pytest -q -p no:cacheprovider`): passed" in question
    assert "Fixed rectangle() by multiplying." in question  # the executor's final message...
    assert "thinking out loud" not in question  # ...but not its transcript
    assert '"citations": [{"path": "src/x.py", "line": 12}]' in question  # lines it relied on
    assert "## Tamper guard flags\n(none)" in question


async def test_not_done_feeds_the_next_iteration_until_the_evaluator_agrees(
    tmp_path: Path,
) -> None:
    repo, questions = judged_repo(tmp_path, [NOT_YET, DONE])
    engine, run_id = await run_fix(repo)
    try:
        run = await engine.history.run(run_id)
        assert (run.status, run.iterations) == (RunStatus.SUCCEEDED, 2)
        verdicts = [verdict for _, verdict in await engine.history.verdicts(run_id)]
        assert [v.done for v in verdicts] == [False, True]
        [second] = [i for i in await engine.history.iterations(run_id) if i.number == 2]
        assert second.agent_ok
    finally:
        await engine.close()
    assert len(json.loads(questions.read_text())) == 2


async def test_a_success_claim_with_a_failing_check_is_never_accepted(tmp_path: Path) -> None:
    repo, questions = judged_repo(tmp_path, [DONE], agent="idle", max_iterations=2)
    engine, run_id = await run_fix(repo)
    try:
        run = await engine.history.run(run_id)
        assert run.status is RunStatus.FAILED  # the idle agent exits 0, the tests still fail
        verdicts = [verdict for _, verdict in await engine.history.verdicts(run_id)]
        assert [(v.done, v.evaluator) for v in verdicts] == [(False, "checks")] * 2
    finally:
        await engine.close()
    assert not questions.exists()  # the judge is not even asked to overrule a failing check


async def test_without_checks_the_evaluator_alone_judges(tmp_path: Path) -> None:
    repo, questions = judged_repo(tmp_path, [DONE], checks=[])
    engine, run_id = await run_fix(repo)
    try:
        assert (await engine.history.run(run_id)).status is RunStatus.SUCCEEDED
    finally:
        await engine.close()
    [question] = json.loads(questions.read_text())
    assert "(no checks configured)" in question


async def test_garbage_is_asked_again_once(tmp_path: Path) -> None:
    repo, questions = judged_repo(tmp_path, ["Looks good to me!", DONE])
    engine, run_id = await run_fix(repo)
    try:
        assert (await engine.history.run(run_id)).status is RunStatus.SUCCEEDED
    finally:
        await engine.close()
    _, second = json.loads(questions.read_text())
    assert "could not be read (no JSON object in the answer)" in second


async def test_garbage_twice_is_unknown_and_pauses_the_run(tmp_path: Path) -> None:
    repo, _ = judged_repo(tmp_path, ['{"done": "yes"}'], evaluator_failures=2, max_iterations=5)
    engine, run_id = await run_fix(repo)
    try:
        run = await engine.history.run(run_id)
        assert (run.status, run.iterations) == (RunStatus.PAUSED, 2)
        assert run.error and "the evaluator failed 2 times in a row" in run.error
        verdicts = [verdict for _, verdict in await engine.history.verdicts(run_id)]
        assert all(v.unknown and not v.done for v in verdicts)
        assert '"done" must be true or false' in verdicts[0].reasons[0]
    finally:
        await engine.close()


async def test_an_unreachable_evaluator_is_unknown_never_done(tmp_path: Path) -> None:
    repo, questions = judged_repo(tmp_path, ["EXIT"], evaluator_failures=1)
    engine, run_id = await run_fix(repo)
    try:
        run = await engine.history.run(run_id)
        assert (run.status, run.iterations) == (RunStatus.PAUSED, 1)
        [(_, verdict)] = await engine.history.verdicts(run_id)
        assert verdict.unknown and verdict.outcome == "unknown"
        assert "could not answer" in verdict.reasons[0]
    finally:
        await engine.close()
    assert len(json.loads(questions.read_text())) == 1  # a crash is not retried as garbage is


def test_verdicts_show_in_log_and_status(tmp_path: Path) -> None:
    repo, _ = judged_repo(tmp_path, ["EXIT"], evaluator_failures=1)
    assert run_cli(repo, "run", "fix").code != 0
    [run] = json.loads(run_cli(repo, "status", "--json").stdout)
    assert run["status"] == "paused"
    assert run["last_verdict"]["outcome"] == "unknown"
    log = run_cli(repo, "log", run["id"]).stdout
    assert "verdict (judge): unknown" in log and "could not answer" in log


def test_an_evaluator_that_cannot_start_is_reported_before_the_run(tmp_path: Path) -> None:
    repo, _ = judged_repo(tmp_path, [DONE])
    config = (repo / CONFIG_NAME).read_text().replace(sys.executable, "/nonexistent/python")
    (repo / CONFIG_NAME).write_text(config)
    result = run_cli(repo, "run", "fix")
    assert result.code != 0
    assert "/nonexistent/python" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_parse_verdict_takes_fenced_json_and_refuses_the_rest() -> None:
    fenced = '```json\n{"done": false, "reasons": "one", "next_steps": ["a"]}\n```'
    verdict = parse_verdict(fenced, "j")
    assert (verdict.done, verdict.reasons, verdict.confidence) == (False, ("one",), 0.5)
    for bad, why in [
        ("nothing", "no JSON object"),
        ('{"done": true,}', "invalid JSON"),
        ("[1]", "no JSON object"),
        ('{"done": 1}', '"done" must be'),
        ('{"done": true, "confidence": "high"}', '"confidence" must be'),
        ('{"done": true, "reasons": [1]}', '"reasons" must be'),
    ]:
        try:
            parse_verdict(bad, "j")
        except ValueError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"{bad!r} was taken as a verdict")


async def test_the_agents_own_claim_is_never_enough(tmp_path: Path) -> None:
    # no checks, no evaluator: the agent exits 0 and says it is done, and that is all
    files = {**BUGGY_PACKAGE, "tools/fix.py": FIXER}
    repo = make_repo(tmp_path / "repo", files, fixer_config(checks=[]))
    engine, run_id = await run_fix(repo)
    try:
        run = await engine.history.run(run_id)
        assert run.status is RunStatus.FAILED and run.iterations == 3
        verdicts = [verdict for _, verdict in await engine.history.verdicts(run_id)]
        assert not any(v.done for v in verdicts)
        assert "nothing but the agent itself says done" in verdicts[0].reasons[-1]
    finally:
        await engine.close()
