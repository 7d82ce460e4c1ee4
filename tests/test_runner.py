"""The loop runner through the engine facade: iterations, prompts, budgets, stall, cancel."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env, git, make_repo
from looptui.engine import Engine, EventKind, RunStatus, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.protocol.events import ErrorReported, OutputPrinted, StatusChanged

PY = sys.executable


def config(agent_argv: list[str], **loop: Any) -> dict[str, Any]:
    return {
        "settings": {"max_parallel": loop.pop("max_parallel", 4)},
        "agents": {"agent": {"kind": "command", "command": agent_argv}},
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


async def open_engine(tmp_path: Path, cfg: dict[str, Any]) -> Engine:
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, cfg)
    return await Engine.open(root, cli_env(), load_config(root / CONFIG_NAME))


async def test_an_iteration_prompt_carries_notes_failing_checks_and_next_steps(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    # Iteration 1 does nothing; iteration 2 reads its prompt and creates the file.
    script = (
        "import os, pathlib, sys\n"
        "n = os.environ['LOOPTUI_ITERATION']\n"
        f"pathlib.Path({str(prompts)!r}, n).write_text(sys.stdin.read())\n"
        "if n == '2': pathlib.Path('done.txt').write_text('ok')\n"
    )
    engine = await open_engine(tmp_path, config([PY, "-c", script]))
    run = await engine.start_run("job")
    final = await engine.wait(run.id)
    await engine.close()

    assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
    first, second = (prompts / "1").read_text(), (prompts / "2").read_text()
    assert first == "Create done.txt.\n"
    assert second.startswith("Create done.txt.")
    assert "## Notes from earlier iterations" in second and "checks 0/1 passed" in second
    assert "## Failing checks" in second and "`test -f done.txt` (exit 1)" in second
    assert "## Next steps from the last verdict" in second


async def test_one_commit_per_iteration_on_the_run_branch_only(tmp_path: Path) -> None:
    script = "import os; open(f\"f{os.environ['LOOPTUI_ITERATION']}.txt\", 'w').write('x')"
    engine = await open_engine(tmp_path, config([PY, "-c", script], max_iterations=2))
    root = engine.repository.root
    main_before = git(root, "rev-parse", "main")
    run = await engine.start_run("job")
    final = await engine.wait(run.id)
    await engine.close()

    assert final.status is RunStatus.FAILED and final.error == "goal not met after 2 iterations"
    log = git(root, "log", "--format=%s", f"{final.base_commit}..{final.branch}").split("\n")
    assert log[:2] == ["job: iteration 2", "job: iteration 1"]
    assert git(root, "rev-parse", "main") == main_before


async def test_a_run_whose_diff_stops_changing_is_stalled(tmp_path: Path) -> None:
    engine = await open_engine(
        tmp_path, config([PY, "-c", "print('no idea')"], max_iterations=5, stall_after=2)
    )
    run = await engine.start_run("job")
    final = await engine.wait(run.id)
    await engine.close()
    assert final.status is RunStatus.STALLED and final.iterations == 2


async def test_an_iteration_timeout_stops_the_agent_and_the_run_goes_on(tmp_path: Path) -> None:
    script = (
        "import os, pathlib, time\n"
        "if os.environ['LOOPTUI_ITERATION'] == '1': time.sleep(60)\n"
        "pathlib.Path('done.txt').write_text('ok')\n"
    )
    engine = await open_engine(tmp_path, config([PY, "-c", script], iteration_timeout="0.5s"))
    run = await engine.start_run("job")
    final = await asyncio.wait_for(engine.wait(run.id), 30)
    events = await engine.store.events(run.id, kinds=[EventKind.ERROR])
    await engine.close()
    assert final.status is RunStatus.SUCCEEDED and final.iterations == 2
    assert any(
        isinstance(e.payload, ErrorReported) and "timed out after 0.5s" in e.payload.message
        for e in events
    )


async def test_a_run_timeout_ends_the_run_as_failed(tmp_path: Path) -> None:
    engine = await open_engine(
        tmp_path, config([PY, "-c", "import time; time.sleep(60)"], run_timeout=1)
    )
    run = await engine.start_run("job")
    final = await asyncio.wait_for(engine.wait(run.id), 30)
    await engine.close()
    assert final.status is RunStatus.FAILED and final.error == "run timed out after 1s"


async def test_stop_cancels_the_run_and_keeps_its_worktree(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(60)"
    engine = await open_engine(tmp_path, config([PY, "-c", script]))
    run = await engine.start_run("job")
    for _ in range(200):
        if started.exists():
            break
        await asyncio.sleep(0.05)
    await engine.stop(run.id)
    final = await engine.store.run(run.id)
    await engine.close()
    assert final.status is RunStatus.CANCELLED and final.finished_at is not None
    assert Path(final.worktree).is_dir()


@pytest.mark.parametrize("max_parallel", [1, 3])
async def test_max_parallel_bounds_concurrent_runs(tmp_path: Path, max_parallel: int) -> None:
    script = "import pathlib, time; time.sleep(0.4); pathlib.Path('done.txt').write_text('ok')"
    engine = await open_engine(tmp_path, config([PY, "-c", script], max_parallel=max_parallel))
    running, peak = 0, 0
    subscription = engine.subscribe()
    runs = [await engine.start_run("job") for _ in range(3)]

    async def watch() -> None:
        nonlocal running, peak
        finished = 0
        async for batch in subscription:
            for event in batch:
                match event.payload:
                    case StatusChanged(status=RunStatus.RUNNING):
                        running += 1
                        peak = max(peak, running)
                    case StatusChanged(status=RunStatus.SUCCEEDED):
                        running -= 1
                        finished += 1
                        if finished == len(runs):
                            return

    await asyncio.wait_for(watch(), 60)
    await engine.close()
    assert peak == max_parallel


async def test_environment_secrets_do_not_reach_the_store(tmp_path: Path) -> None:
    secret = "hunter2-super-secret-value"
    env = {**cli_env(), "DEPLOY_TOKEN": secret}
    script = "import os; print('token is', os.environ['DEPLOY_TOKEN']); print(os.environ)"
    root = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config([PY, "-c", script]))
    engine = await Engine.open(root, env, load_config(root / CONFIG_NAME))
    run = await engine.start_run("job", prompt=f"deploy with {secret}")
    await engine.wait(run.id)
    events = await engine.store.events(run.id)
    lines = [e.payload.line for e in events if isinstance(e.payload, OutputPrinted)]
    await engine.close()
    assert any("token is [REDACTED]" in line for line in lines)
    store_bytes = b"".join(p.read_bytes() for p in engine.repository.data_dir.glob("store.db*"))
    assert secret.encode() not in store_bytes
    assert os.environ.get("DEPLOY_TOKEN") is None


def test_a_huge_prompt_is_cut_to_fit_keeping_the_goal_and_the_feedback() -> None:
    from looptui.engine.models import CheckResult, Note, NoteKind
    from looptui.engine.prompting import MAX_PROMPT_CHARS, build_prompt

    notes = [Note("r", i, NoteKind.ATTEMPT, f"attempt {i} " + "x" * 3000) for i in range(1, 60)]
    notes.append(Note("r", 59, NoteKind.FEEDBACK, "Keep the public API."))
    noisy = CheckResult("tests", "pytest", 1, 1.0, ("E" * 60_000 + "\n") * 40 + "the real error")
    prompt = build_prompt("Make the tests pass.", 60, notes, [noisy], None)
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.startswith("## Feedback from the human reviewing your work")  # it leads
    assert "- Keep the public API.\n\nMake the tests pass." in prompt
    assert "attempt 58" in prompt and "attempt 1 " not in prompt  # the newest notes stay
    assert "the real error" in prompt  # the end of the output, where failures are explained
