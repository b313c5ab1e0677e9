"""Which controller is the active one: on PostgreSQL, the one whose session holds the
controller lock (an advisory lock); any other is a standby, waiting for that session to end.

Nothing of the controller starts before it holds the lock: no port is bound, no job loaded,
so a standby is invisible to workers (they find its port closed and try the next address).
The lock goes when its holder's session ends: at once when the process dies, within the
keepalives' deadline when its host is cut off. The holder checks its session before each
heartbeat and stops (exit 1, crash-only) when it is gone, since the lock may be another's by
then. On SQLite there is nothing to choose: the datastore is a file on one host.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import datastore
from controller.config import ControllerConfig
from foundation import defaults

log = logging.getLogger(__name__)

# A bigint of its own ("DPIPCTLR"), apart from the datastore's keys (datastore/postgres.py).
CONTROLLER_LOCK = 0x44504950_43544C52
LOCK_SESSION = "dpip-controller-lock"  # the lock's session, as PostgreSQL's views name it


class Leadership(Protocol):
    """What the active controller holds while it is the active one."""

    def confirm(self) -> None:
        """Raise datastore.StoreUnavailable if this controller may no longer be the active one."""

    def release(self) -> None:
        """Let a standby take over."""


class SoleController:
    """The leadership of a controller on SQLite: the only one there can be."""

    def confirm(self) -> None:
        pass

    def release(self) -> None:
        pass


def become_active(config: ControllerConfig, stopping: threading.Event) -> Leadership | None:
    """Wait until this controller may be the active one (at once on SQLite); None if
    `stopping` was set first. Raises datastore.StoreError if PostgreSQL cannot be reached."""
    if not datastore.is_postgres(config.database):
        return SoleController()
    from datastore.session_lock import SessionLock  # psycopg loads only for PostgreSQL

    keepalive = config.lock_keepalive
    lock = SessionLock(
        config.database_url,
        CONTROLLER_LOCK,
        LOCK_SESSION,
        keepalive_idle_s=keepalive.idle_s,
        keepalive_interval_s=keepalive.interval_s,
        keepalive_count=keepalive.count,
    )
    try:
        if not lock.try_take():
            log.info(
                "standby: the controller lock is held by %s; taking over when it ends",
                lock.holder(),
            )
            while not lock.take(defaults.CONTROLLER_LOCK_WAIT_SLICE_S):
                if stopping.is_set():
                    lock.release()
                    return None
    except BaseException:
        lock.release()
        raise
    log.info("holding the controller lock: this controller is the active one")
    return lock
