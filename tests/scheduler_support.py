"""A real engine and scheduler on a temporary repository, on a fake clock, for the trigger
tests: agents are real subprocesses that record the prompt they got and, for the `hold`
agent, keep working until the test releases them."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import cli_env, make_repo
from looptui.engine import Engine, load_config
from looptui.engine.config import CONFIG_NAME
from looptui.engine.store.ledger import Firing, Outcome
from looptui.engine.triggers.clock import Clock, FakeClock
from looptui.service.scheduler import Scheduler

PY = sys.executable
# 2027-01-15 10:00:00 UTC, a Friday: a whole minute, far from any change of the clocks
T0 = 1_800_007_200.0
DEADLINE = 30.0


def agents(tmp: Path) -> dict[str, Any]:
    """`quick` records its prompt and ends; `maker` also writes `made.txt` in its worktree;
    `hold` records it, then works until the file `release` exists in the test's directory."""
    record = (
        "import os, pathlib, sys, time\n"
        f"out = pathlib.Path({str(tmp / 'prompts')!r})\n"
        "out.mkdir(exist_ok=True)\n"
        "(out / os.environ['LOOPTUI_RUN_ID']).write_text(sys.stdin.read())\n"
    )
    hold = record + (
        f"release = pathlib.Path({str(tmp / 'release')!r})\n"
        "while not release.exists():\n"
        "    time.sleep(0.01)\n"
    )
    make = record + "pathlib.Path('made.txt').write_text('made')\n"
    return {
        "quick": {"kind": "command", "command": [PY, "-c", record]},
        "maker": {"kind": "command", "command": [PY, "-c", make]},
        "hold": {"kind": "command", "command": [PY, "-c", hold]},
    }


def loop(agent: str = "quick", **fields: Any) -> dict[str, Any]:
    return {"prompt": "Do it. Fired by: {fired_by}", "agent": agent, "max_iterations": 1, **fields}


@dataclass
class Rig:
    tmp: Path
    engine: Engine
    scheduler: Scheduler
    clock: FakeClock

    async def firings(self, loop_name: str | None = None) -> list[Firing]:
        return list(reversed(await self.engine.store.firings(loop_name, limit=1000)))

    async def outcomes(self, loop_name: str | None = None) -> list[Outcome]:
        return [firing.outcome for firing in await self.firings(loop_name)]

    def release(self) -> None:
        (self.tmp / "release").write_text("go")

    async def prompt_of(self, run_id: str) -> str:
        """The prompt the run's agent received (once it wrote it down)."""
        path = self.tmp / "prompts" / run_id
        await until(lambda: _value(path.exists()), bool)
        return await until(lambda: _value(path.read_text()), bool)

    async def settled(self, firing_id: int) -> Firing:
        """The firing once it is no longer pending."""
        store = self.engine.store
        return await until(
            lambda: store.firing(firing_id), lambda f: f.outcome is not Outcome.PENDING
        )

    async def advance(self, seconds: float) -> None:
        """Move the fake clock once the scheduler's timer sleeps, then let it fire."""
        await until(lambda: _value(self.clock.sleeping_until()), bool)
        self.clock.advance(seconds)
        await asyncio.sleep(0)
        await until(lambda: _value(self.clock.sleeping_until()), bool)
        await self.scheduler.idle()


async def _value(value: Any) -> Any:
    return value


async def until(
    read: Callable[[], Awaitable[Any]], holds: Callable[[Any], bool], within: float = DEADLINE
) -> Any:
    """Read until `holds(value)`, or fail after `within` seconds with the last value."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await read()
        if holds(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r} after {within:g}s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def rig(
    tmp: Path,
    loops: dict[str, Any],
    *,
    start: float = T0,
    files: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    root: Path | None = None,
    clock: Clock | None = None,
    more_agents: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> AsyncIterator[Rig]:
    """An engine and a started scheduler; both closed at the end (runs still going are
    stopped). `root` reopens a repository made before (a restart)."""
    if root is None:
        config: dict[str, Any] = {"agents": {**agents(tmp), **(more_agents or {})}, "loops": loops}
        if settings:
            config["settings"] = settings
        root = make_repo(tmp / "repo", files or {"README.md": "hi\n"}, config)
    engine = await Engine.open(
        root, {**cli_env(), **(environ or {})}, load_config(root / CONFIG_NAME)
    )
    clock = clock or FakeClock(start)
    scheduler = Scheduler(engine, clock)
    try:
        await scheduler.start()
        yield Rig(tmp, engine, scheduler, clock)  # type: ignore[arg-type]
    finally:
        (tmp / "release").write_text("go")
        await scheduler.close()
        await engine.close()
