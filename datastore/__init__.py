"""The datastore: the one source of truth for cluster state, in SQLite (WAL mode, the
default) or PostgreSQL."""

from datastore.connection import (
    Connection,
    Row,
    connect,
    is_postgres,
    location,
    session_pool,
    transaction,
)
from datastore.errors import StoreError, StoreUnavailable

__all__ = [
    "Connection",
    "Row",
    "StoreError",
    "StoreUnavailable",
    "connect",
    "is_postgres",
    "location",
    "session_pool",
    "transaction",
]
