"""The SQLite memory store."""

from looptui.engine.store.database import StoreError
from looptui.engine.store.history import History
from looptui.engine.store.store import Store
from looptui.engine.store.writer import Subscription

__all__ = ["History", "Store", "StoreError", "Subscription"]
