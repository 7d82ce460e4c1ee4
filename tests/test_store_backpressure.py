"""The writer asks producers that can wait to do so before it would drop their lines."""

from __future__ import annotations

from pathlib import Path

from looptui.engine.store import Store
from looptui.engine.store.writer import HIGH_WATER
from looptui.protocol.events import EventKind, OutputPrinted


async def test_a_crowded_store_makes_room_instead_of_dropping(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "store.db")
    try:
        # emitted without yielding: the writer cannot take any of them yet
        for index in range(HIGH_WATER):
            store.emit("run1", OutputPrinted(f"line {index}", "stdout"), 1)
        assert store.crowded
        await store.room()
        assert not store.crowded
        for index in range(HIGH_WATER, 3 * HIGH_WATER):  # past MAX_PENDING had it not waited
            store.emit("run1", OutputPrinted(f"line {index}", "stdout"), 1)
            if store.crowded:
                await store.room()
        await store.flush()
        lines = await store.events("run1", kinds=[EventKind.OUTPUT])
        assert store.events_dropped == 0
        assert [
            event.payload.line for event in lines if isinstance(event.payload, OutputPrinted)
        ] == [f"line {index}" for index in range(3 * HIGH_WATER)]
    finally:
        await store.close()
