"""The datastore: SQLite in WAL mode, the one source of truth for cluster state."""

from datastore.connection import StoreError, connect, transaction

__all__ = ["StoreError", "connect", "transaction"]
