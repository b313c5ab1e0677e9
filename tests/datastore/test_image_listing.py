"""Originals added as a batch, and a workload's images read page by page, on a real SQLite file."""

from __future__ import annotations

import sqlite3

import datastore
from datastore import jobs, transaction, workloads
from datastore.connection import SCHEMA, SqliteConnection
from datastore.workloads import NewOriginal
from protocol import JobStatus


def _workload(conn: sqlite3.Connection) -> int:
    with transaction(conn) as db:
        user = db.execute(
            "INSERT INTO users (username, password_hash, role, created_at)"
            " VALUES ('carol', 'not-a-hash', 'user', 0) RETURNING id"
        ).fetchone()[0]
        return workloads.create_workload(db, user, "frames", "grayscale", {}, [])["id"]


def test_a_batch_is_numbered_in_order_after_the_images_before_it(conn):
    workload_id = _workload(conn)
    with transaction(conn) as db:
        first = workloads.add_original(db, workload_id, "PNG", 4, 3, size=99, filename="a.png")
        batch = [NewOriginal("JPEG", 8, 6, 1000 + n, f"frame{n}.jpg") for n in range(3)]
        numbers = workloads.add_originals(db, workload_id, batch)
    assert (first, numbers) == (0, [1, 2, 3])
    rows = workloads.list_images(conn, workload_id)
    assert [tuple(row) for row in rows] == [
        (0, "a.png", 99, "PNG", 4, 3, "queued", ""),
        *[(n + 1, f"frame{n}.jpg", 1000 + n, "JPEG", 8, 6, "queued", "") for n in range(3)],
    ]
    assert [job.image_number for job in jobs.load_queued_jobs(conn)] == [0, 1, 2, 3]
    assert workloads.workload_progress(conn, workload_id).counts == {"queued": 4}


def test_pages_and_the_status_filter(conn):
    workload_id = _workload(conn)
    with transaction(conn) as db:
        workloads.add_originals(db, workload_id, [NewOriginal("PNG", 1, 1)] * 7)
        db.execute(
            "UPDATE jobs SET status = 'failed', error = 'broken' WHERE image_number IN (1, 4, 5)"
        )

    def numbers(status=None, offset=0, limit=None) -> list[int]:
        rows = workloads.list_images(conn, workload_id, status, offset, limit)
        return [row["number"] for row in rows]

    assert numbers(offset=2, limit=3) == [2, 3, 4]
    assert numbers(offset=6, limit=3) == [6]
    assert numbers(offset=9) == []
    assert numbers(JobStatus.FAILED) == [1, 4, 5]
    assert numbers(JobStatus.FAILED, offset=1, limit=1) == [4]
    assert numbers(JobStatus.QUEUED) == [0, 2, 3, 6]
    assert numbers(JobStatus.DONE) == []
    failed = workloads.list_images(conn, workload_id, JobStatus.FAILED)[0]
    assert (failed["filename"], failed["size"], failed["error"]) == (None, None, "broken")
    assert workloads.count_images(conn, workload_id, None) == 7
    assert workloads.count_images(conn, workload_id, JobStatus.FAILED) == 3
    assert workloads.count_images(conn, workload_id, JobStatus.DONE) == 0
    assert workloads.count_images(conn, workload_id + 1, None) == 0


def test_images_stored_before_filenames_were_kept_list_without_them(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None, factory=SqliteConnection)
    old.executescript(SCHEMA)  # the first version, without filename and size
    old.execute("INSERT INTO users VALUES (1, 'a', 'x', 'user', 0)")
    old.execute("INSERT INTO workloads VALUES (1, 1, 'w', '1-w', 'grayscale', '{}', '[]', 1, 0)")
    old.execute("INSERT INTO images VALUES (1, 0, 'PNG', 2, 2, 0)")
    old.execute(
        "INSERT INTO jobs (workload_id, image_number, status, queued_at) VALUES (1, 0, 'done', 0)"
    )
    old.close()
    conn = datastore.connect(path)
    try:
        [row] = workloads.list_images(conn, 1)
        assert tuple(row) == (0, None, None, "PNG", 2, 2, "done", "")
    finally:
        conn.close()
