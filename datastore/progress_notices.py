"""Workload progress as PostgreSQL notices (LISTEN/NOTIFY): how the controller wakes the
API processes' long polls when they share only the datastore, not a host.

A notice says only "look again" (which workloads had jobs end): a waiting request re-reads
the datastore. PostgreSQL does not replay the notices a listener missed while it was
disconnected, so after each (re)connection the listener hears `None`: every waiter looks
again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

import psycopg

from datastore.errors import StoreError
from datastore.postgres import PostgresConnection

log = logging.getLogger(__name__)

CHANNEL = "dpip_progress"
MAX_IDS_PER_NOTICE = 500  # a notice's payload must stay under 8 000 bytes
STOP_CHECK_S = 1.0  # how soon a listener notices it should stop
RECONNECT_S = 1.0  # between attempts while the database is unreachable (recovery only)


def announce(conn: PostgresConnection, workload_ids: Iterable[int]) -> None:
    """Tell every listener these workloads progressed (several notices for many ids).

    Raises StoreError when the database cannot be reached."""
    ids = sorted(workload_ids)
    try:
        for start in range(0, len(ids), MAX_IDS_PER_NOTICE):
            payload = json.dumps(ids[start : start + MAX_IDS_PER_NOTICE])
            conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, payload))
    except psycopg.Error as e:
        raise StoreError(f"cannot announce progress: {e}") from e


def listen(
    url: str, on_progress: Callable[[tuple[int, ...] | None], None], stop: threading.Event
) -> None:
    """Hand each notice's workload ids to `on_progress` until `stop` is set, reconnecting
    whenever the connection is lost; `None` after each connection (see the module's doc)."""
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as session:
                session.execute(f"LISTEN {CHANNEL}")
                on_progress(None)
                while not stop.is_set():
                    for notice in session.notifies(timeout=STOP_CHECK_S):
                        if (ids := _workload_ids(notice.payload)) is not None:
                            on_progress(ids)
        except psycopg.Error as e:
            log.warning("progress notices: %s; listening again", e)
            stop.wait(RECONNECT_S)


def _workload_ids(payload: str) -> tuple[int, ...] | None:
    try:
        ids = json.loads(payload)
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        log.warning("dropped a bad progress notice: %.80r", payload)
        return None
    return tuple(ids)
