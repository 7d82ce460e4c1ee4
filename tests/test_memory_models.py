"""What the model is told from memory, as the loopback fake model server receives it: the
checkpoint of the last iteration, and a lesson of an earlier run only once it is accepted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import cli_env, make_repo, run_cli
from fake_models import FakeModelServer, Say
from looptui.engine import Engine, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.models import NoteKind, NoteStatus
from test_prompts_stored import CHECK, OPENAI_KEY, given

pytestmark = pytest.mark.timeout(180)


def prompts_sent(server: FakeModelServer) -> list[str]:
    return [prompt for _, prompt in filter(None, map(given, server.requests))]


def test_the_model_gets_the_checkpoint_and_an_accepted_lesson_only(tmp_path: Path) -> None:
    with FakeModelServer() as server:
        config = {
            "agents": {"model": {"kind": "openai", "api": "chat", "base_url": server.url + "/v1"}},
            "loops": {
                "finish": {
                    "prompt": "Write done.txt.",
                    "agent": "model",
                    "checks": [CHECK],
                    "max_iterations": 2,
                }
            },
        }
        repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"}, config)
        home = tmp_path / "home"
        home.mkdir()
        env = {**cli_env(), "HOME": str(home), "OPENAI_API_KEY": OPENAI_KEY}

        server.add(Say("Not yet."), Say("Still not."))  # run 1 fails its check twice
        assert run_cli(repo, "run", "finish", env=env).code != 0
        first, second = prompts_sent(server)
        assert "Notes from earlier iterations" not in first
        # the checkpoint of iteration 1, as the model got it in iteration 2
        assert (
            "- iteration 1 (problem): no change to the diff; agent finished; checks 0/1" in second
        )
        assert (
            "  Problems: check done failed (exit 1): done.txt is missing; "
            "the last iteration changed nothing\n" in second
        )
        assert "  Tried: left every file as it was; the agent said: Not yet." in second

        server.add(Say("No."), Say("No."))  # run 2: the lesson is only proposed
        run_cli(repo, "run", "finish", env=env)
        assert all("What earlier runs" not in p for p in prompts_sent(server)[2:])

        lesson_id = asyncio.run(accept_the_lesson(repo, env))
        server.add(Say("Trying."), Say("Trying."))  # run 3: accepted, so the model is told
        run_cli(repo, "run", "finish", env=env)
        told = prompts_sent(server)[4]
        assert "## What earlier runs of this loop learned" in told
        assert f"(note #{lesson_id}, from run " in told and ", seen in 2 runs) Check done" in told
        assert "kept failing for 2 iterations with: done.txt is missing" in told


async def accept_the_lesson(repo: Path, env: dict[str, str]) -> int:
    engine = await Engine.open(repo, env, load_config(repo / CONFIG_NAME))
    try:
        (lesson,) = await engine.store.memory(loop="finish", kinds=[NoteKind.LESSON])
        assert lesson.status is NoteStatus.PROPOSED and lesson.seen == 2
        assert lesson.id is not None
        await engine.accept_note(lesson.id)
        return lesson.id
    finally:
        await engine.close()
