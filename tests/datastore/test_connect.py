"""Opening the datastore: processes that create it at the same moment all get it, on
either engine; an old SQLite datastore is upgraded in place."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

import datastore
from datastore.connection import SCHEMA, SCHEMA_VERSION, SqliteConnection
from tests.conftest import ENGINES

ROUNDS = 10
PROCESSES = 3


def open_at(path: Path | str, start_at: float, results: multiprocessing.Queue) -> None:
    while time.time() < start_at:  # line the processes up on one moment
        pass
    try:
        datastore.connect(path).close()
        results.put("ok")
    except Exception as e:  # reported to the test, which names it
        results.put(repr(e))


@pytest.mark.parametrize("engine", ENGINES)
def test_processes_creating_the_datastore_at_once_all_open_it(tmp_path, engine, request):
    context = multiprocessing.get_context("fork")
    outcomes = []
    for round_number in range(ROUNDS):
        if engine == "sqlite":
            path: Path | str = tmp_path / f"round-{round_number}.sqlite3"
        else:
            postgres = request.getfixturevalue("postgres")
            path = postgres.create_database(f"round_{round_number}_{uuid.uuid4().hex}")
        results = context.Queue()
        start_at = time.time() + 0.2
        processes = [
            context.Process(target=open_at, args=(path, start_at, results))
            for _ in range(PROCESSES)
        ]
        try:
            for process in processes:
                process.start()
            outcomes += [results.get(timeout=60) for _ in processes]
        finally:
            for process in processes:
                process.join(timeout=60)
                if process.is_alive():
                    process.kill()
    assert outcomes == ["ok"] * ROUNDS * PROCESSES


def test_a_datastore_of_the_first_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None, factory=SqliteConnection)
    old.executescript(SCHEMA)  # version 1, as DPIP made it before schema versions were kept
    old.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('a', 'x', 'user', 0)"
    )
    old.execute(
        "INSERT INTO workloads (user_id, name, dir_name, filter, params, tags, created_at)"
        " VALUES (1, 'w', '1-w', 'grayscale', '{}', '[]', 0)"
    )
    old.execute("INSERT INTO images VALUES (1, 0, 'PNG', 1, 1, 0)")
    old.execute(
        "INSERT INTO jobs (workload_id, image_number, status, queued_at, started_at)"
        " VALUES (1, 0, 'done', 0, 42.0)"
    )
    old.close()

    conn = datastore.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT started_at FROM workloads").fetchone()[0] == 42.0
        assert conn.execute("SELECT process_rss_bytes FROM workers").fetchall() == []
        assert conn.execute("SELECT count FROM job_counts").fetchone()[0] == 1
    finally:
        conn.close()
