"""Writes on the store's connection while its events writer commits, batch after batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

from looptui.engine.models import Run, RunStatus
from looptui.engine.store import Store
from looptui.protocol.events import OutputPrinted


async def test_record_writes_never_lose_the_race_with_the_events_writer(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    run = Run("r1", "loop", "agent", RunStatus.RUNNING, "p", "main", "c0", "b", "w", 3)
    await store.insert_run(run)
    streaming = True

    async def stream() -> None:
        count = 0
        while streaming:
            for _ in range(200):
                store.emit(run.id, OutputPrinted(f"line {count}"))
                count += 1
            await asyncio.sleep(0.001)

    flood = asyncio.create_task(stream())
    try:
        for write in range(100):  # each of these read, waited, then failed before the fix
            await store.update_run(run.id, iterations=write % 5)
            await store.record_loop("loop", {"prompt": f"p{write}"})
    finally:
        streaming = False
        await flood
        await store.close()
