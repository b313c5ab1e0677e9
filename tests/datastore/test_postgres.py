"""What only the PostgreSQL engine has: its schema matches SQLite's version, a datastore of
another version is refused, rows read like SQLite's, and a URL's password stays out of
messages."""

from __future__ import annotations

import pytest

import datastore
from datastore import StoreError, connection, postgres


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
