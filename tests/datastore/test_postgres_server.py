"""The tests' PostgreSQL server: real databases, one per test, on loopback, gone after use."""

from __future__ import annotations

import socket
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest

from tests.conftest import free_port
from tests.postgres_server import PostgresServer, PostgresServerError, postgres_bin_dir

needs_postgres = pytest.mark.skipif(
    postgres_bin_dir() is None,
    reason="PostgreSQL is not installed (.ci/run installs Debian's postgresql)",
)


def table_names(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}


def server_processes(needle: str) -> list[psutil.Process]:
    """The processes whose command line mentions `needle` (a data dir, a port)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(needle in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


def alive(process: psutil.Process) -> bool:
    """Whether `process` still runs: an exited one may wait as a zombie for its reaper."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_test_database_stores_and_returns_rows(postgres_url):
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE jobs (id integer PRIMARY KEY, status text NOT NULL)")
        connection.execute("INSERT INTO jobs VALUES (1, 'done'), (2, 'queued')")
        connection.commit()
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT id, status FROM jobs ORDER BY id").fetchall()
    assert rows == [(1, "done"), (2, "queued")]


def test_each_database_is_its_own(postgres, postgres_url):
    other_name = f"test_{uuid.uuid4().hex}"
    other_url = postgres.create_database(other_name)
    try:
        assert other_url != postgres_url
        with psycopg.connect(postgres_url) as connection:
            connection.execute("CREATE TABLE only_here (id integer)")
        with psycopg.connect(other_url) as connection:
            connection.execute("CREATE TABLE only_there (id integer)")
        assert table_names(postgres_url) == {"only_here"}
        assert table_names(other_url) == {"only_there"}
    finally:
        postgres.drop_database(other_name)


def test_the_server_listens_on_loopback_only(postgres, postgres_url):
    assert urlsplit(postgres_url).hostname == "127.0.0.1"
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    # Every 127.x address reaches this machine, so 127.0.0.2 shows the bind is to one address.
    elsewhere = ["127.0.0.2", "::1"] + [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]
    for address in elsewhere:
        with pytest.raises(OSError):
            socket.create_connection((address, postgres.port), timeout=2).close()


@needs_postgres
def test_a_server_leaves_no_process_or_directory_behind():
    with PostgresServer(free_port()) as server:
        root = server.root
        [postmaster] = server_processes(str(server.data_dir))
        started = [postmaster, *postmaster.children(recursive=True)]
        assert len(started) > 1  # the postmaster's own workers (checkpointer, walwriter, ...)
    assert server_processes(str(root)) == []
    assert not any(alive(process) for process in started)
    assert not root.exists()


@needs_postgres
def test_a_server_that_cannot_start_leaves_nothing_behind(monkeypatch):
    made: list[str] = []
    make_directory = tempfile.mkdtemp

    def recorded_mkdtemp(**kwargs) -> str:
        made.append(make_directory(**kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recorded_mkdtemp)
    with socket.socket() as taken:  # the port is in use, so the server cannot bind it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PostgresServerError, match="could not bind"), PostgresServer(port):
            pass
    [root] = made
    assert server_processes(root) == []
    assert not Path(root).exists()
