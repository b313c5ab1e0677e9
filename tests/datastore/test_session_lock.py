"""The controller lock's session (datastore/session_lock.py) against a real PostgreSQL: one
session holds the lock, another waits for it and gets it the moment the first ends, and a
holder whose session the server ended learns that it lost it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import psycopg
import pytest

from datastore.session_lock import LockLost, SessionLock

KEY = 0x7465_7374_6C6F_636B  # "testlock"
NAME = "dpip-test-lock"


@pytest.fixture
def open_lock(postgres_url: str) -> Iterator:
    with ExitStack() as stack:

        def open_one() -> SessionLock:
            lock = SessionLock(
                postgres_url,
                KEY,
                NAME,
                keepalive_idle_s=5,
                keepalive_interval_s=2,
                keepalive_count=3,
            )
            stack.callback(lock.release)
            return lock

        yield open_one


def test_one_session_holds_the_lock_and_another_gets_it_when_that_one_ends(open_lock) -> None:
    holder, waiter = open_lock(), open_lock()
    assert holder.try_take()
    assert not waiter.try_take()
    assert "server pid" in waiter.holder()
    started = time.monotonic()
    assert not waiter.take(within_s=0.2)  # a bounded wait
    assert 0.15 < time.monotonic() - started < 5
    holder.release()
    assert waiter.take(within_s=5)
    waiter.confirm()


def test_both_ends_of_its_session_probe_a_silent_peer(open_lock) -> None:
    """The server's end too, so PostgreSQL gives up a holder cut off (11 s here)."""
    lock = open_lock()
    server_side = lock._session.execute(  # the session's own settings, as the server has them
        "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'),"
        " current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout'),"
        " current_setting('application_name')"
    ).fetchone()
    assert server_side == ("5", "2", "3", "11000", NAME)
    client_side = lock._session.info.get_parameters()
    assert (client_side["keepalives_idle"], client_side["tcp_user_timeout"]) == ("5", "11000")


def test_a_holder_whose_session_the_server_ended_learns_it_lost_the_lock(
    open_lock, postgres_url
) -> None:
    holder, waiter = open_lock(), open_lock()
    assert holder.try_take()
    with psycopg.connect(postgres_url, autocommit=True) as session:
        session.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM"
            " pg_database WHERE datname = current_database())"
        )
    with pytest.raises(LockLost):
        holder.confirm()
    assert waiter.take(within_s=5)
