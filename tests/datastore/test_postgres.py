"""What only the PostgreSQL engine has: its schema matches SQLite's version, a datastore of
another version is refused, rows read like SQLite's, a URL's password stays out of
messages, writers take turns as SQLite's do, and a lost session says it is unavailable."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

import datastore
from api.errors import error_answer
from datastore import (
    StoreError,
    StoreUnavailable,
    connection,
    postgres,
    progress_notices,
    transaction,
    users,
)


def test_its_schema_is_the_sqlite_schemas_version() -> None:
    # An upgrade added to SQLite's UPGRADES needs its PostgreSQL form in postgres.SCHEMA.
    assert postgres.SCHEMA_VERSION == connection.SCHEMA_VERSION


def test_a_datastore_of_another_version_is_refused(postgres_url: str) -> None:
    datastore.connect(postgres_url).close()
    conn = datastore.connect(postgres_url)
    conn.execute("UPDATE dpip_schema SET version = ?", (postgres.SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StoreError, match="version"):
        datastore.connect(postgres_url)


def test_rows_read_by_position_and_by_name(postgres_url: str) -> None:
    conn = datastore.connect(postgres_url)
    row = conn.execute("SELECT 1 AS one, 'two' AS two, ? AS three", (3.5,)).fetchone()
    assert (row[0], row["two"], row["three"], row[-1]) == (1, "two", 3.5, 3.5)
    assert row.keys() == ["one", "two", "three"]
    assert tuple(row) == (1, "two", 3.5)
    percent = conn.execute("SELECT '100%' || ?", ("!",)).fetchone()[0]
    assert percent == "100%!"  # a literal % is not a placeholder
    conn.close()


def test_a_failed_connection_names_the_database_not_its_password(postgres) -> None:
    url = postgres.url("no_such_database").replace("postgres@", "postgres:s3cr3t@")
    with pytest.raises(StoreError) as raised:
        datastore.connect(url)
    assert "no_such_database" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)


def test_a_session_the_server_ended_is_unavailable_and_the_api_answers_503(
    postgres_url: str,
) -> None:
    """A restart or a cut connection ends a session: its next statement raises
    StoreUnavailable (the API's 503, which clients retry), and rolling back is harmless."""
    conn = datastore.connect(postgres_url)
    try:
        session = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(postgres_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (session,))
        with pytest.raises(StoreUnavailable) as lost:
            conn.execute("SELECT 1")
        conn.rollback()
    finally:
        conn.close()
    status, code, _ = error_answer(lost.value)
    assert (status, code) == (503, "datastore_unavailable")


def test_writers_take_turns_and_readers_never_wait(postgres_url: str) -> None:
    holder, other = datastore.connect(postgres_url), datastore.connect(postgres_url)
    wrote = threading.Event()

    def write_alone() -> None:  # a single write outside any transaction
        users.revoke_token(other, "jti-of-the-other", time.time() + 60)
        wrote.set()

    writer = threading.Thread(target=write_alone)
    try:
        with transaction(holder):
            users.revoke_token(holder, "jti-of-the-holder", time.time() + 60)
            writer.start()
            assert not wrote.wait(0.5)  # it waits for the transaction's write lock
            reader = datastore.connect(postgres_url)
            assert reader.execute("SELECT COUNT(*) FROM revoked_tokens").fetchone()[0] == 0
            reader.close()
        assert wrote.wait(10)
        assert holder.execute("SELECT COUNT(*) FROM revoked_tokens").fetchone()[0] == 2
    finally:
        writer.join(timeout=10)
        holder.close()
        other.close()


def test_progress_notices_carry_every_id_and_a_listener_hears_none_first(
    postgres_url: str,
) -> None:
    heard: list[tuple[int, ...] | None] = []
    stop = threading.Event()
    listener = threading.Thread(
        target=progress_notices.listen, args=(postgres_url, heard.append, stop)
    )
    listener.start()
    conn = datastore.connect(postgres_url)
    try:
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:  # listening: it said None
            time.sleep(0.01)
        assert heard == [None]
        many = range(1, 2 * progress_notices.MAX_IDS_PER_NOTICE + 2)
        progress_notices.announce(conn, many)
        conn.execute("SELECT pg_notify(?, ?)", (progress_notices.CHANNEL, "not json"))
        while sum(len(ids or ()) for ids in heard) < len(many) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [len(ids) for ids in heard[1:]] == [500, 500, 1]  # the bad one dropped
        assert sorted(i for ids in heard[1:] for i in ids) == list(many)
    finally:
        stop.set()
        listener.join(timeout=10)
        conn.close()
    assert not listener.is_alive()
