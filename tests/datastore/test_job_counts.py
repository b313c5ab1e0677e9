"""job_counts, kept by triggers: always what counting the jobs table would say."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import datastore
from datastore import jobs, transaction, users, workloads
from datastore.connection import SCHEMA, SqliteConnection
from protocol import JobStatus

COUNT_JOBS = "SELECT workload_id, status, COUNT(*) FROM jobs GROUP BY workload_id, status"
KEPT_COUNTS = "SELECT workload_id, status, count FROM job_counts WHERE count > 0"


def counted(conn: sqlite3.Connection) -> set[tuple]:
    return {tuple(row) for row in conn.execute(COUNT_JOBS)}


def kept(conn: sqlite3.Connection) -> set[tuple]:
    return {tuple(row) for row in conn.execute(KEPT_COUNTS)}


def add_workload(conn: sqlite3.Connection, user_id: int, name: str, images: int) -> list[int]:
    with transaction(conn) as db:
        workload_id = workloads.create_workload(db, user_id, name, "grayscale", {}, [])["id"]
        for _ in range(images):
            workloads.add_original(db, workload_id, "PNG", 8, 8)
    return [
        row[0] for row in conn.execute("SELECT id FROM jobs WHERE workload_id = ?", (workload_id,))
    ]


def test_counts_follow_every_job_transition_and_deletion(location: Path | str):
    conn = datastore.connect(location)
    carol = users.create_user(conn, "carol", "a long enough password")["id"]
    dave = users.create_user(conn, "dave", "another long password")["id"]
    first = add_workload(conn, carol, "first", 5)
    second = add_workload(conn, dave, "second", 3)
    assert kept(conn) == counted(conn) and len(counted(conn)) == 2

    for job_id in first[:4]:
        jobs.assign_job(conn, job_id, worker_id=1)
    jobs.assign_job(conn, second[0], worker_id=2)
    first_workload = jobs.workloads_of(conn, first).pop()
    assert jobs.complete_job(conn, first_workload, 0, worker_id=1)
    jobs.fail_attempt(conn, first[1], 1, "broken", max_attempts=1)  # failed for good
    jobs.fail_attempt(conn, first[2], 1, "flaky", max_attempts=3)  # back to the queue
    jobs.release_worker_jobs(conn, 2, frozenset(), "worker died", max_attempts=3)
    assert kept(conn) == counted(conn)
    assert {status for _, status, _ in kept(conn)} == {s.value for s in JobStatus}

    second_workload = jobs.workloads_of(conn, second).pop()
    users.delete_user(conn, "dave")  # cascades to the workload, its images and jobs
    assert kept(conn) == counted(conn)
    assert not conn.execute(
        "SELECT 1 FROM job_counts WHERE workload_id = ?", (second_workload,)
    ).fetchall()
    conn.close()


def test_a_datastore_from_before_job_counts_is_counted_when_opened(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    older_schema = SCHEMA[: SCHEMA.index("-- Jobs per workload")] + "COMMIT;"
    old = sqlite3.connect(path, isolation_level=None, factory=SqliteConnection)
    old.row_factory = sqlite3.Row
    old.executescript(older_schema)
    old.execute(
        "INSERT INTO users (username, password_hash, role, created_at)"
        " VALUES ('ed', 'x', 'user', 0)"
    )
    with transaction(old) as db:
        workload_id = workloads.create_workload(db, 1, "old", "blur", {}, [])["id"]
        for number in range(4):  # as that schema's code added them (no filename, no size)
            db.execute("INSERT INTO images VALUES (?, ?, 'PNG', 8, 8, 0)", (workload_id, number))
            db.execute(
                "INSERT INTO jobs (workload_id, image_number, status, queued_at)"
                " VALUES (?, ?, 'queued', 0)",
                (workload_id, number),
            )
    old.execute("UPDATE jobs SET status = 'done' WHERE image_number < 3")
    old.close()

    conn = datastore.connect(path)
    assert kept(conn) == {(workload_id, "done", 3), (workload_id, "queued", 1)}
    progress = workloads.workload_progress(conn, workload_id)
    assert progress.counts == {"done": 3, "queued": 1}
    add_workload(conn, 1, "new", 2)  # and the triggers keep counting from there
    assert kept(conn) == counted(conn)
    conn.close()
