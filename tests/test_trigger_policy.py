"""What a firing does, as pure functions: overlap, concurrency, the same instant, catch-up;
and the prompt's placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from looptui.engine.config import load_config
from looptui.engine.errors import ConfigError
from looptui.engine.triggers.model import Policy
from looptui.engine.triggers.placeholders import MAX_PATHS, render, unknown_placeholders
from looptui.engine.triggers.policy import (
    Action,
    Active,
    concurrency_limit,
    on_catch_up,
    on_fire,
)

ONE = [Active("r1", firing_id=1, fired_due_at=100.0, fired_by="cron")]


@pytest.mark.parametrize(
    ("policy", "active", "waiting", "action", "into"),
    [
        (Policy(), [], None, Action.START, None),
        (Policy(), [], 7, Action.COALESCE, 7),  # the queue drains first
        (Policy(overlap="skip"), ONE, None, Action.SKIP, None),
        (Policy(overlap="queue"), ONE, None, Action.QUEUE, None),
        (Policy(overlap="queue"), ONE, 7, Action.COALESCE, 7),
        (Policy(overlap="replace"), ONE, None, Action.REPLACE, None),
        (Policy(overlap="parallel", parallel_max=2), ONE, None, Action.START, None),
        (Policy(overlap="parallel", parallel_max=1), ONE, None, Action.QUEUE, None),
        # the loop's own bound wins over parallel_max
        (
            Policy(overlap="parallel", parallel_max=3, max_concurrent=1),
            ONE,
            None,
            Action.QUEUE,
            None,
        ),
    ],
)
def test_overlap(
    policy: Policy, active: list[Active], waiting: int | None, action: Action, into: int | None
) -> None:
    decision = on_fire(policy, 500.0, active, waiting, "watch")
    assert (decision.action, decision.into) == (action, into)


def test_another_trigger_at_the_same_instant_joins_the_run_and_the_same_trigger_does_not() -> None:
    parallel = Policy(overlap="parallel", parallel_max=3)
    joined = on_fire(parallel, 100.5, ONE, None, "every")
    assert (joined.action, joined.into) == (Action.COALESCE, 1)
    assert on_fire(parallel, 100.5, ONE, None, "cron").action is Action.START
    assert on_fire(parallel, 102.0, ONE, None, "every").action is Action.START  # a second on


def test_concurrency_limit() -> None:
    assert concurrency_limit(Policy()) == 1
    assert concurrency_limit(Policy(overlap="parallel", parallel_max=4)) == 4
    assert concurrency_limit(Policy(overlap="parallel", parallel_max=4, max_concurrent=2)) == 2


@pytest.mark.parametrize(
    ("policy", "due", "now", "fire", "missed"),
    [
        (Policy(), [], 1000.0, None, 0),
        (Policy(), [10.0, 20.0, 30.0], 40.0, 30.0, 2),  # the newest, once
        (Policy(catch_up="skip"), [10.0, 20.0, 30.0], 40.0, None, 3),
        (Policy(catch_up_max_age=5.0), [10.0, 20.0, 30.0], 40.0, None, 3),  # too old
    ],
)
def test_catch_up(
    policy: Policy, due: list[float], now: float, fire: float | None, missed: int
) -> None:
    decision = on_catch_up(policy, due, now)
    assert (decision.fire, decision.missed) == (fire, missed)


def test_placeholders_are_filled_from_the_payload_and_by_hand() -> None:
    prompt = (
        "Fix {changed_paths} at {commit} after {previous_run}: {previous_verdict}. {fired_by} {{x}}"
    )
    filled = render(
        prompt,
        {
            "changed_paths": ["a.py", "b.py"],
            "commit": {"sha": "0123456789abcdef", "subject": "add a"},
            "previous_run": {"id": "r1", "loop": "build", "status": "succeeded"},
            "previous_verdict": "done",
            "fired_by": "watch src/**",
        },
    )
    assert filled == (
        "Fix - a.py\n- b.py at 0123456789ab add a after r1 (build, succeeded): done. "
        "watch src/** {x}"
    )
    by_hand = render(prompt, None)
    assert "(no files changed)" in by_hand and by_hand.endswith("started by hand {x}")
    many = render("{changed_paths}", {"changed_paths": [f"f{i}" for i in range(MAX_PATHS + 5)]})
    assert many.endswith("- ... and 5 more")
    assert unknown_placeholders("a {changed_path} b {{literal}} {commit} {x}") == [
        "changed_path",
        "x",
    ]


def test_an_unknown_placeholder_is_a_config_error_naming_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "looptui.toml"
    path.write_text(
        '[agents.a]\nkind = "command"\ncommand = ["true"]\n'
        '[loops.docs]\nagent = "a"\nprompt = "Document {changed_path}."\n'
    )
    with pytest.raises(ConfigError, match=r"loops\.docs: unknown placeholder \{changed_path\}"):
        load_config(path)
