"""`looptui demo`: a small repository with failing tests and loops of replay agents.

Everything is offline: the agents replay scripts, while the worktrees, commits, checks,
verdicts and the store are all real.
"""

from __future__ import annotations

import asyncio
import json
import math
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from looptui.console import make_console, render_event, runs_table
from looptui.engine import Engine, LooptuiError
from looptui.invocation import looptui_command

_FILES = {
    ".gitignore": "__pycache__/\n*.pyc\n",
    "README.md": "# calc\n\nA tiny calculator with a few bugs, for the looptui demo.\n",
    "calc/__init__.py": '"""A tiny calculator."""\n',
    "calc/arith.py": (
        '"""Arithmetic on two numbers."""\n\n\n'
        "def add(a, b):\n    return a - b\n\n\n"
        "def subtract(a, b):\n    return a - b\n\n\n"
        "def multiply(a, b):\n    return a * b\n\n\n"
        "def divide(a, b):\n    return a / b\n"
    ),
    "calc/stats.py": ("def mean(values):\n    return sum(values) / (len(values) + 1)\n"),
    "tests/__init__.py": "",
    "tests/test_add.py": (
        "import unittest\n\nfrom calc.arith import add\n\n\n"
        "class AddTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
    ),
    "tests/test_stats.py": (
        "import unittest\n\nfrom calc.stats import mean\n\n\n"
        "class MeanTest(unittest.TestCase):\n"
        "    def test_mean(self):\n        self.assertEqual(mean([1, 2, 3]), 2)\n\n"
        "    def test_mean_of_nothing(self):\n"
        "        with self.assertRaises(ValueError):\n            mean([])\n"
    ),
    "tests/test_speed.py": (
        "import unittest\n\n\n"
        "class SpeedTest(unittest.TestCase):\n"
        "    def test_impossible_budget(self):\n"
        "        self.assertLess(1.0, 0.5, 'nothing runs in negative time')\n"
    ),
}


def _step(at: float, **step: Any) -> dict[str, Any]:
    return {"at": at, **step}


def _read(at: float, path: str, iteration: int) -> dict[str, Any]:
    return _step(at, iteration=iteration, tool="read", input={"path": path})


def _spent(at: float, tokens_in: int, tokens_out: int, usd: float, **when: Any) -> dict[str, Any]:
    """What a model would have spent by then: the cards' costs grow as the agents work."""
    usage = {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": usd}
    return _step(at, usage=usage, **when)


# The replays' stories, timed in seconds at speed 1 (the whole demo in about six seconds);
# watched (WATCHABLE_SPEED) each second is ten. Every loop has its own: a fix with a stray
# line inside its hunk to reject line by line, a fix whose first try fails its check and
# whose second an evaluator judges, a new file, and a goal no change can meet, which stalls.
REPLAYS: dict[str, list[dict[str, Any]]] = {
    "fix-add": [
        _step(0.2, iteration=1, log="$ python -m unittest tests.test_add"),
        _step(0.6, iteration=1, log="FAIL: test_add (tests.test_add.AddTest.test_add)"),
        _step(0.9, iteration=1, log="AssertionError: -1 != 5"),
        _read(1.3, "calc/arith.py", iteration=1),
        _spent(1.4, 6_100, 210, 0.0215, iteration=1),
        _step(1.8, iteration=1, text="add() subtracts; it should add."),
        _step(
            2.3,
            iteration=1,
            edit={
                "path": "calc/arith.py",
                "old": "def add(a, b):\n    return a - b\n",
                # A stray debugging line inside the fix's hunk: the reviewer keeps the fix
                # and leaves this line out, in line mode.
                "new": "def add(a, b):\n    print('debug: add', a, b)\n    return a + b\n",
            },
        ),
        _read(2.8, "tests/test_add.py", iteration=1),
        _step(3.2, iteration=1, log="$ python -m unittest tests.test_add"),
        _step(3.6, iteration=1, log="Ran 1 test: OK"),
        _spent(3.9, 12_300, 940, 0.0510, iteration=1),
        _step(4.0, iteration=1, message="Fixed add(): it returned a - b."),
        # What it does with a reviewer's comment (the demo's answer to any feedback).
        _step(0.5, iteration=2, text="The reviewer is right: the debug print must go."),
        _step(
            1.0,
            iteration=2,
            edit={
                "path": "calc/arith.py",
                "old": "    print('debug: add', a, b)\n",
                "new": "",
            },
        ),
        _spent(1.3, 9_800, 420, 0.0357, iteration=2),
        _step(1.4, iteration=2, message="Removed the debug print from add()."),
    ],
    "fix-mean": [
        _step(0.3, log="reading calc/stats.py"),
        _step(0.7, iteration=1, log="$ python -m unittest tests.test_stats"),
        _step(1.1, iteration=1, log="FAIL: test_mean -- AssertionError: 1.5 != 2"),
        _step(
            1.5,
            iteration=1,
            text="mean() divides by len + 1; dividing by len fixes the average.",
        ),
        _step(
            2.0,
            iteration=1,
            edit={"path": "calc/stats.py", "old": "(len(values) + 1)", "new": "len(values)"},
        ),
        _spent(2.5, 15_200, 980, 0.0603, iteration=1),
        _step(2.6, iteration=1, message="Fixed the off-by-one in mean()."),
        _step(0.7, iteration=2, log="the check says mean([]) must raise ValueError"),
        _read(1.1, "tests/test_stats.py", iteration=2),
        _spent(1.2, 8_400, 260, 0.0291, iteration=2),
        _step(
            1.6,
            iteration=2,
            edit={
                "path": "calc/stats.py",
                "old": "def mean(values):\n",
                "new": (
                    "def mean(values):\n    if not values:\n"
                    "        raise ValueError('mean of no values')\n"
                ),
            },
        ),
        _step(2.0, iteration=2, log="$ python -m unittest tests.test_stats"),
        _step(2.3, iteration=2, log="Ran 2 tests: OK"),
        _spent(2.5, 13_200, 1_080, 0.0558, iteration=2),
        _step(2.6, iteration=2, message="mean([]) now raises ValueError."),
    ],
    "docs": [
        _step(0.3, log="collecting the public functions"),
        _step(0.8, tool="search", input={"pattern": "def "}),
        _step(1.3, log="calc/arith.py: add, subtract, multiply, divide"),
        _step(1.7, log="calc/stats.py: mean"),
        _spent(1.8, 7_700, 330, 0.0281),
        _step(2.2, text="One example per function, on one page."),
        _step(
            2.8,
            write={
                "path": "docs/usage.md",
                "content": "# Usage\n\n```python\nfrom calc.arith import add\n"
                "from calc.stats import mean\n\nadd(2, 3)      # 5\nmean([1, 2, 3])  # 2\n```\n",
            },
        ),
        _spent(3.1, 5_200, 1_290, 0.0350),
        _step(3.2, message="Wrote docs/usage.md."),
    ],
    "speedup": [
        _step(0.5, log="profiling the test suite"),
        _step(1.0, iteration=1, log="FAIL: test_impossible_budget -- 1.0 not less than 0.5"),
        _step(1.0, iteration=2, log="the check still fails: 1.0 is still not less than 0.5"),
        _step(1.5, tool="read", input={"path": "tests/test_speed.py"}),
        _step(2.0, text="The budget in test_speed cannot be met; nothing to change."),
        _spent(2.3, 11_300, 610, 0.0431),
        _step(2.4, message="No change made."),
    ],
    # The evaluator of fix-mean: reads the change in its own checkout, then answers with a
    # verdict citing the lines it rests on (each citation is checked against the checkout).
    "reviewer": [
        _step(0.3, log="reading the diff, calc/stats.py and tests/test_stats.py"),
        _spent(0.8, 8_700, 520, 0.0339),
        _step(
            0.9,
            message=json.dumps(
                {
                    "done": True,
                    "confidence": 0.9,
                    "reasons": [
                        "mean() divides by len(values) and raises ValueError for no values",
                        "both tests of tests/test_stats.py pass, and no test was changed",
                    ],
                    "next_steps": [],
                    "citations": [
                        {"path": "calc/stats.py", "line": 3},
                        {"path": "calc/stats.py", "line": 4},
                        {"path": "tests/test_stats.py", "line": 10},
                    ],
                }
            ),
        ),
    ],
}


def _loops(python: str) -> dict[str, Any]:
    def unittest(module: str) -> str:
        return f"{python} -m unittest -q {module}"

    return {
        "fix-add": {
            "prompt": "Make tests/test_add.py pass.",
            "agent": "fix-add",
            "checks": [{"name": "tests", "run": unittest("tests.test_add"), "timeout": 60}],
            "max_iterations": 3,
        },
        "fix-mean": {
            "prompt": "Make tests/test_stats.py pass.",
            "agent": "fix-mean",
            "checks": [{"name": "tests", "run": unittest("tests.test_stats"), "timeout": 60}],
            "max_iterations": 3,
            "evaluator": "reviewer",
        },
        "docs": {
            "prompt": "Write docs/usage.md with an example for each public function.",
            "agent": "docs",
            "checks": [{"name": "usage-doc", "run": "grep -q '^# Usage' docs/usage.md"}],
            "max_iterations": 2,
        },
        "speedup": {
            "prompt": "Make tests/test_speed.py pass.",
            "agent": "speedup",
            "checks": [{"name": "tests", "run": unittest("tests.test_speed"), "timeout": 60}],
            "max_iterations": 4,
            "stall_after": 2,
        },
    }


# How fast the demo's replay agents work when a person watches: slow enough to see several
# agents at work (and to quit while they are) for about a minute. At 1.0 all four runs end
# within about six seconds, which tests and scripts prefer.
WATCHABLE_SPEED = 0.1
# Marks a repository as the demo's, so the app shows where it is (a temporary directory).
DEMO_MARKER = ".looptui/demo.md"
_MARKER_TEXT = (
    "This repository was made by `looptui demo` to try looptui on: its agents replay\n"
    "scripts (.looptui/replays), its checks are real. Delete the directory when done.\n"
)


def is_demo_repository(root: Path) -> bool:
    """Whether `root` is a repository made by `looptui demo`."""
    return (root / DEMO_MARKER).is_file()


def reopen_hint(path: Path) -> str:
    """The command that opens the app on the demo at `path` again."""
    return f"cd {shlex.quote(str(path))} && {looptui_command()}"


def create_demo_repository(directory: Path | None, speed: float = 1.0) -> Path:
    """Create and commit the demo repository, its replay agents working at `speed`; refuse a
    directory that is not empty."""
    if not speed > 0 or math.isinf(speed):  # NaN is not above 0 either
        raise LooptuiError(f"the demo's speed must be a number above 0, not {speed:g}")
    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="looptui-demo-"))
    else:
        path = directory.resolve()
        if path.exists() and any(path.iterdir()):
            raise LooptuiError(f"{path} is not empty; give a new or empty directory for the demo")
        path.mkdir(parents=True, exist_ok=True)
    for relative, text in _FILES.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (path / DEMO_MARKER).parent.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    replays = path / ".looptui" / "replays"
    replays.mkdir(parents=True)
    for name, steps in REPLAYS.items():
        lines = [json.dumps(step) for step in steps]
        (replays / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "settings": {"max_parallel": 4},
        "agents": {
            name: {"kind": "replay", "script": f".looptui/replays/{name}.jsonl", "speed": speed}
            for name in REPLAYS
        },
        "loops": _loops(shlex.quote(sys.executable)),
    }
    (path / "looptui.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    identity = ["-c", "user.name=looptui demo", "-c", "user.email=demo@looptui.invalid"]
    for command in (
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", *identity, "commit", "--quiet", "-m", "calc: a calculator with failing tests"],
    ):
        subprocess.run(command, cwd=path, check=True, capture_output=True)
    return path


async def run_demo(engine: Engine) -> None:
    """Start every loop of the demo at once and show their events as they come."""
    assert engine.config is not None
    console = make_console()
    subscription = engine.subscribe()
    runs = [await engine.start_run(name) for name in engine.config.loops]
    width = max(len(run.loop) for run in runs)
    labels = {run.id: f"{run.loop:<{width}} " for run in runs}

    async def show() -> None:
        async for batch in subscription:
            for event in batch:
                line = render_event(event, prefix=labels.get(event.run_id, ""))
                if line is not None:
                    console.print(line)

    printer = asyncio.create_task(show())
    for run in runs:
        await engine.wait(run.id)
    await engine.store.flush()
    subscription.close()
    await printer
    console.print()
    console.print(runs_table(await engine.history.runs()))
    succeeded = [run for run in await engine.history.runs() if run.status == "succeeded"]
    if succeeded:
        looptui = looptui_command()
        console.print(
            f"\nreview a run: {looptui} diff {succeeded[0].id}; "
            f"land it: {looptui} merge {succeeded[0].id}",
            markup=False,
            highlight=False,
            soft_wrap=True,  # a command to copy: never broken across lines
        )
