"""The SQLite memory store."""

from looptui.engine.store.database import StoreError
from looptui.engine.store.store import Store
from looptui.engine.store.writer import Subscription

__all__ = ["Store", "StoreError", "Subscription"]
