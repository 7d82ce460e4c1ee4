"""The SQLite memory store."""

from looptui.engine.store.store import Store, Subscription

__all__ = ["Store", "Subscription"]
