"""Job state transitions: queued → running → done | queued (retry) | failed.

Every transition is one conditional UPDATE, so a late or duplicate event changes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from datastore.connection import Connection
from protocol import JobStatus


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting for a worker, with what placement needs to know about it."""

    job_id: int
    workload_id: int
    user_id: int  # the workload's owner: users take turns before their workloads do
    image_number: int
    filter_name: str
    params: dict[str, Any]
    tags: frozenset[str]
    attempts: int
    last_worker_id: int | None


def load_queued_jobs(
    conn: Connection, after_id: int = 0, job_ids: list[int] | None = None
) -> list[QueuedJob]:
    """Return queued jobs with an id above `after_id` (or among `job_ids`), oldest first."""
    query = (
        "SELECT jobs.id, jobs.workload_id, jobs.image_number, jobs.attempts, jobs.worker_id,"
        " workloads.user_id, workloads.filter, workloads.params, workloads.tags"
        " FROM jobs JOIN workloads ON workloads.id = jobs.workload_id"
        " WHERE jobs.status = ? AND jobs.id > ?"
    )
    args: list = [JobStatus.QUEUED, after_id]
    if job_ids is not None:
        query += f" AND jobs.id IN {conn.dialect.ids_in_json}"
        args.append(json.dumps(job_ids))
    rows = conn.execute(query + " ORDER BY jobs.id", args).fetchall()
    return [
        QueuedJob(
            job_id=row["id"],
            workload_id=row["workload_id"],
            user_id=row["user_id"],
            image_number=row["image_number"],
            filter_name=row["filter"],
            params=json.loads(row["params"]),
            tags=frozenset(json.loads(row["tags"])),
            attempts=row["attempts"],
            last_worker_id=row["worker_id"],
        )
        for row in rows
    ]


def queued_job_ids(conn: Connection) -> list[int]:
    """Ids of every queued job, oldest first."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT id FROM jobs WHERE status = ? ORDER BY id", (JobStatus.QUEUED,)
        )
    ]


def assign_job(conn: Connection, job_id: int, worker_id: int) -> int | None:
    """Mark a queued job as running on a worker; return its attempt number, None if not queued."""
    row = conn.execute(
        "UPDATE jobs SET status = ?, worker_id = ?, attempts = attempts + 1, started_at = ?"
        " WHERE id = ? AND status = ? RETURNING attempts",
        (JobStatus.RUNNING, worker_id, time.time(), job_id, JobStatus.QUEUED),
    ).fetchone()
    return None if row is None else row[0]


def queue_waits(conn: Connection, job_ids: list[int]) -> list[float]:
    """How long each of these running jobs waited in the queue before it started, in seconds
    (one bound parameter for any count)."""
    rows = conn.execute(
        "SELECT started_at - queued_at FROM jobs"
        f" WHERE id IN {conn.dialect.ids_in_json} AND started_at IS NOT NULL",
        (json.dumps(job_ids),),
    )
    return [waited for (waited,) in rows]


def unassign_job(conn: Connection, job_id: int, worker_id: int) -> bool:
    """Put back a job the worker never received; the attempt does not count. The job's
    queue time starts again. False if it was not running there."""
    return (
        conn.execute(
            "UPDATE jobs SET status = ?, attempts = attempts - 1, started_at = NULL,"
            " queued_at = ? WHERE id = ? AND status = ? AND worker_id = ?",
            (JobStatus.QUEUED, time.time(), job_id, JobStatus.RUNNING, worker_id),
        ).rowcount
        > 0
    )


def is_assigned(conn: Connection, workload_id: int, number: int, worker_id: int) -> bool:
    """Whether the image's job runs on this worker now."""
    return (
        conn.execute(
            "SELECT 1 FROM jobs WHERE workload_id = ? AND image_number = ?"
            " AND status = ? AND worker_id = ?",
            (workload_id, number, JobStatus.RUNNING, worker_id),
        ).fetchone()
        is not None
    )


@dataclass(frozen=True)
class HeldImage:
    """The image of a job running on a worker: where its files are and their format."""

    workload_id: int
    number: int
    dir_name: str  # the workload's group in the image store
    format: str  # the original's, which its result keeps


def images_held_by(conn: Connection, worker_id: int) -> dict[tuple[int, int], HeldImage]:
    """The images of every job running on the worker, by (workload id, image number).

    One indexed query bounded by what the worker holds, so a batch request costs a set
    look-up per image it names, whatever it names.
    """
    rows = conn.execute(
        "SELECT jobs.workload_id, jobs.image_number, workloads.dir_name, images.format"
        " FROM jobs JOIN workloads ON workloads.id = jobs.workload_id"
        " JOIN images ON images.workload_id = jobs.workload_id"
        " AND images.number = jobs.image_number"
        " WHERE jobs.worker_id = ? AND jobs.status = ?",
        (worker_id, JobStatus.RUNNING),
    )
    return {(row[0], row[1]): HeldImage(*row) for row in rows}


def complete_job(conn: Connection, workload_id: int, number: int, worker_id: int) -> bool:
    """Mark the image's job done if this worker still holds it; False means a stale result."""
    return (
        conn.execute(
            "UPDATE jobs SET status = ?, finished_at = ?, error = ''"
            " WHERE workload_id = ? AND image_number = ? AND status = ? AND worker_id = ?",
            (JobStatus.DONE, time.time(), workload_id, number, JobStatus.RUNNING, worker_id),
        ).rowcount
        > 0
    )


def fail_attempt(
    conn: Connection, job_id: int, worker_id: int, error: str, max_attempts: int
) -> JobStatus | None:
    """Record a failed attempt: back to the queue (its queue time starts again), or failed
    at the attempt limit."""
    now = time.time()
    row = conn.execute(
        "UPDATE jobs SET status = CASE WHEN attempts >= ? THEN ? ELSE ? END, error = ?,"
        " finished_at = CASE WHEN attempts >= ? THEN ? ELSE NULL END,"
        " queued_at = CASE WHEN attempts >= ? THEN queued_at ELSE ? END"
        " WHERE id = ? AND status = ? AND worker_id = ? RETURNING status",
        (
            max_attempts,
            JobStatus.FAILED,
            JobStatus.QUEUED,
            error,
            max_attempts,
            now,
            max_attempts,
            now,
            job_id,
            JobStatus.RUNNING,
            worker_id,
        ),
    ).fetchone()
    return None if row is None else JobStatus(row[0])


def release_worker_jobs(
    conn: Connection,
    worker_id: int,
    keep_job_ids: frozenset[int],
    error: str,
    max_attempts: int,
) -> tuple[list[int], list[int]]:
    """Take back a worker's running jobs except `keep_job_ids`.

    Returns the ids requeued and the ids that failed for good (at the attempt limit).
    """
    rows = conn.execute(
        "SELECT id FROM jobs WHERE worker_id = ? AND status = ?", (worker_id, JobStatus.RUNNING)
    ).fetchall()
    requeued, failed = [], []
    for (job_id,) in rows:
        if job_id in keep_job_ids:
            continue
        status = fail_attempt(conn, job_id, worker_id, error, max_attempts)
        if status is JobStatus.QUEUED:
            requeued.append(job_id)
        elif status is JobStatus.FAILED:
            failed.append(job_id)
    return requeued, failed


def workloads_of(conn: Connection, job_ids: list[int]) -> set[int]:
    """The ids of the workloads these jobs belong to (one bound parameter for any count)."""
    rows = conn.execute(
        f"SELECT DISTINCT workload_id FROM jobs WHERE id IN {conn.dialect.ids_in_json}",
        (json.dumps(job_ids),),
    )
    return {workload_id for (workload_id,) in rows}


def running_jobs_by_worker(conn: Connection) -> dict[int, set[int]]:
    """Map each worker id to the ids of the jobs it runs, per the datastore."""
    running: dict[int, set[int]] = {}
    for job_id, worker_id in conn.execute(
        "SELECT id, worker_id FROM jobs WHERE status = ?", (JobStatus.RUNNING,)
    ):
        running.setdefault(worker_id, set()).add(job_id)
    return running
