"""A session-level advisory lock of PostgreSQL on a session of its own: held for as long as
that session lives, released by the server the moment it ends (its process killed, the
server ending it, or its peer found gone by TCP keepalives).

Both ends of the session probe a silent peer (libpq's keepalives on this side, the
server's `tcp_keepalives_*` set for this session on the other) and give up on data left
unacknowledged just as soon (`tcp_user_timeout`), so a holder cut off from the server loses
the lock, and learns that it did, within the keepalives' deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors

from datastore.errors import StoreError, StoreUnavailable
from datastore.postgres import _without_password


class LockLost(StoreUnavailable):
    """Raised when the session that held (or awaited) a lock is gone: the lock may be
    another's now."""


class SessionLock:
    """Advisory lock `key` of the database at `url`, on a session named `application` that
    probes a silent peer after `keepalive_idle_s`, every `keepalive_interval_s`, and gives it
    up after `keepalive_count` probes unanswered (or as long after data it sent)."""

    def __init__(
        self,
        url: str,
        key: int,
        application: str,
        *,
        keepalive_idle_s: int,
        keepalive_interval_s: int,
        keepalive_count: int,
    ) -> None:
        self._key = key
        deadline_ms = (keepalive_idle_s + keepalive_interval_s * keepalive_count) * 1000
        try:
            self._session = psycopg.connect(
                url,
                autocommit=True,
                application_name=application,  # who is who in pg_stat_activity
                keepalives=1,
                keepalives_idle=keepalive_idle_s,
                keepalives_interval=keepalive_interval_s,
                keepalives_count=keepalive_count,
                tcp_user_timeout=deadline_ms,
            )
        except psycopg.Error as e:
            raise StoreError(f"cannot open datastore {_without_password(url)}: {e}") from e
        try:
            self._set_up(keepalive_idle_s, keepalive_interval_s, keepalive_count, deadline_ms)
        except LockLost:
            self._session.close()
            raise

    def _set_up(self, idle_s: int, interval_s: int, count: int, deadline_ms: int) -> None:
        with self._translated():
            for setting, value in (
                ("tcp_keepalives_idle", idle_s),
                ("tcp_keepalives_interval", interval_s),
                ("tcp_keepalives_count", count),
                ("tcp_user_timeout", deadline_ms),
                ("statement_timeout", 0),  # a wait is bounded by `take`'s lock_timeout alone
            ):
                self._session.execute(f"SET {setting} = {int(value)}")  # type: ignore[arg-type]

    def try_take(self) -> bool:
        """Take the lock if it is free; whether this session holds it now."""
        with self._translated():
            row = self._session.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
            return bool(row.fetchone()[0])  # type: ignore[index]

    def take(self, within_s: float) -> bool:
        """Wait up to `within_s` for the lock, which is this session's the moment its
        holder's session ends; whether this session holds it now."""
        with self._translated():
            self._session.execute(f"SET lock_timeout = {max(1, round(within_s * 1000))}")  # type: ignore[arg-type]
            try:
                self._session.execute("SELECT pg_advisory_lock(%s)", (self._key,))
            except psycopg.errors.LockNotAvailable:
                return False
        return True

    def holder(self) -> str:
        """Who holds the lock, as the server sees it: a client address and a server pid."""
        with self._translated():
            row = self._session.execute(
                "SELECT activity.client_addr, activity.pid FROM pg_locks AS locks"
                " JOIN pg_stat_activity AS activity ON activity.pid = locks.pid"
                " WHERE locks.locktype = 'advisory' AND locks.granted AND locks.objsubid = 1"
                " AND locks.database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
                " AND (locks.classid::bigint << 32 | locks.objid::bigint) = %s",
                (self._key,),
            ).fetchone()
        if row is None:
            return "nobody any more"
        address, pid = row
        return f"the session of {address or 'a local socket'} (server pid {pid})"

    def confirm(self) -> None:
        """Check, in one round trip, that the session (so the lock) is still this
        process's; raise LockLost if not."""
        with self._translated():
            self._session.execute("SELECT 1")

    def release(self) -> None:
        """End the session, which releases the lock."""
        self._session.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as e:
            raise LockLost(f"the session of the lock ended: {e}") from e
