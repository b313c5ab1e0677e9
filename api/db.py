"""The datastore connection of the current request: one per server thread, kept open.

Opening a connection per request costs more than the request itself: in WAL mode the last
connection to close checkpoints the log. Each server thread keeps its own connection;
teardown only makes sure no transaction outlives the request.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

import datastore
from datastore import Connection

_per_thread = threading.local()


def get_db() -> Connection:
    path = current_app.config["DPIP"].database
    conn = getattr(_per_thread, "conn", None)
    if conn is None or _per_thread.path != path:
        conn = datastore.connect(path)
        _per_thread.conn, _per_thread.path = conn, path
    return conn


def end_request(exc: BaseException | None = None) -> None:
    conn = getattr(_per_thread, "conn", None)
    if conn is not None and conn.in_transaction:
        conn.rollback()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(end_request)
