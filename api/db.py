"""The datastore connection of the current request.

On SQLite each server thread keeps a connection of its own open: opening one costs more
than the request itself (in WAL mode the last connection to close checkpoints the log). On
PostgreSQL the request borrows a session from its process's pool and gives it back at
teardown: a process holds no more sessions than it has requests in flight, and a session
the server dropped is replaced instead of failing every later request of its thread.
Either way, teardown makes sure no transaction outlives the request.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from flask import Flask, current_app, g

import datastore
from datastore import Connection

if TYPE_CHECKING:
    from datastore.connection import PostgresPool

API_SESSIONS = "dpip-api"  # the API's sessions, as PostgreSQL's views name them

_per_thread = threading.local()
_pools: dict[tuple[int, str], PostgresPool] = {}
_pools_lock = threading.Lock()


def get_db() -> Connection:
    config = current_app.config["DPIP"]
    if datastore.is_postgres(config.database):
        if "dpip_session" not in g:
            g.dpip_session = _pool(config.database, config.database_sessions).lend()
        return g.dpip_session
    conn = getattr(_per_thread, "conn", None)
    if conn is None or _per_thread.path != config.database:
        conn = datastore.connect(config.database)
        _per_thread.conn, _per_thread.path = conn, config.database
    return conn


def _pool(url: str, max_sessions: int) -> PostgresPool:
    """This process's pool: made on first use, since a pool's sessions and threads do not
    survive the fork from gunicorn's master to its workers."""
    key = (os.getpid(), url)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key) or datastore.session_pool(url, max_sessions, API_SESSIONS)
            _pools[key] = pool
    return pool


def end_request(exc: BaseException | None = None) -> None:
    session = g.pop("dpip_session", None)
    if session is not None:
        config = current_app.config["DPIP"]
        _pool(config.database, config.database_sessions).take_back(session)
        return
    conn = getattr(_per_thread, "conn", None)
    if conn is not None and conn.in_transaction:
        conn.rollback()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(end_request)
