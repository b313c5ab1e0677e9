"""Workloads and their images: numbering, per-status counts and the jobs created with them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from datastore import metric_counts
from datastore.connection import Connection, Row
from datastore.filtered_cache import FilteredImagesCache
from foundation.errors import DPIPError
from protocol import JobStatus, WorkloadStatus

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class WorkloadExists(DPIPError, ValueError):
    """Raised when the user already has a workload of that name."""


def safe_dir_name(workload_id: int, name: str) -> str:
    """Build a directory name from a workload name: no separators, no dot-dot, unique by id."""
    slug = _UNSAFE_CHARS.sub("_", name).strip("._")[:64] or "workload"
    return f"{workload_id}-{slug}"


def create_workload(
    conn: Connection,
    user_id: int,
    name: str,
    filter_name: str,
    params: dict[str, Any],
    tags: list[str],
) -> Row:
    """Insert a workload (call inside a transaction) and return its row."""
    try:
        cursor = conn.execute(
            "INSERT INTO workloads (user_id, name, dir_name, filter, params, tags, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                user_id,
                name,
                f"pending-{time.time_ns()}",
                filter_name,
                json.dumps(params),
                json.dumps(tags),
                time.time(),
            ),
        )
    except conn.dialect.integrity_error as e:
        if not conn.dialect.is_unique_violation(e):
            raise
        raise WorkloadExists(f"you already have a workload named {name!r}") from e
    workload_id = cursor.fetchone()[0]
    conn.execute(
        "UPDATE workloads SET dir_name = ? WHERE id = ?",
        (safe_dir_name(workload_id, name), workload_id),
    )
    return get_workload(conn, workload_id)


def get_workload(conn: Connection, workload_id: int) -> Row | None:
    return conn.execute("SELECT * FROM workloads WHERE id = ?", (workload_id,)).fetchone()


def delete_workload(conn: Connection, workload_id: int) -> bool:
    """Delete the workload and (by cascade) its images and jobs; False if there was none."""
    return conn.execute("DELETE FROM workloads WHERE id = ?", (workload_id,)).rowcount > 0


def list_workloads(conn: Connection, user_id: int | None) -> list[Row]:
    """Return a user's workloads, or everyone's when `user_id` is None."""
    if user_id is None:
        return conn.execute("SELECT * FROM workloads ORDER BY id").fetchall()
    return conn.execute(
        "SELECT * FROM workloads WHERE user_id = ? ORDER BY id", (user_id,)
    ).fetchall()


@dataclass(frozen=True)
class NewOriginal:
    """An accepted original image, as recorded before it has a number."""

    format: str
    width: int
    height: int
    size: int | None = None  # bytes
    filename: str | None = None  # what the client called it (untrusted text)


def add_originals(
    conn: Connection, workload_id: int, originals: Sequence[NewOriginal]
) -> list[int]:
    """Number new originals in the order given and queue their jobs (call inside a
    transaction): one numbering update and two multi-row inserts, whatever their count, and
    one addition to the count of uploaded images."""
    count = len(originals)
    first = conn.execute(
        "UPDATE workloads SET next_image_number = next_image_number + ? WHERE id = ?"
        " RETURNING next_image_number - ?",
        (count, workload_id, count),
    ).fetchone()[0]
    numbers = list(range(first, first + count))
    now = time.time()
    conn.executemany(
        "INSERT INTO images (workload_id, number, format, width, height, size, filename,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (workload_id, number, o.format, o.width, o.height, o.size, o.filename, now)
            for number, o in zip(numbers, originals, strict=True)
        ],
    )
    conn.executemany(
        "INSERT INTO jobs (workload_id, image_number, status, queued_at) VALUES (?, ?, ?, ?)",
        [(workload_id, number, JobStatus.QUEUED.value, now) for number in numbers],
    )
    metric_counts.count(conn, metric_counts.IMAGES_UPLOADED, count)
    return numbers


def add_original(
    conn: Connection,
    workload_id: int,
    image_format: str,
    width: int,
    height: int,
    *,
    size: int | None = None,
    filename: str | None = None,
) -> int:
    """Number a new original image and queue its job (call inside a transaction)."""
    original = NewOriginal(image_format, width, height, size, filename)
    return add_originals(conn, workload_id, [original])[0]


def get_image(conn: Connection, workload_id: int, number: int) -> Row | None:
    """Return the image joined with its job's status, worker and error."""
    return conn.execute(
        "SELECT images.*, jobs.status, jobs.worker_id, jobs.error FROM images"
        " JOIN jobs ON jobs.workload_id = images.workload_id"
        " AND jobs.image_number = images.number"
        " WHERE images.workload_id = ? AND images.number = ?",
        (workload_id, number),
    ).fetchone()


_IMAGES_WITH_JOBS = (
    "SELECT jobs.image_number AS number, images.filename, images.size, images.format,"
    " images.width, images.height, jobs.status, jobs.error FROM jobs JOIN images"
    " ON images.workload_id = jobs.workload_id AND images.number = jobs.image_number"
    " WHERE jobs.workload_id = ?"
)


def list_images(
    conn: Connection,
    workload_id: int,
    status: JobStatus | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Row]:
    """The workload's images in number order (only those whose job is in `status`, if
    given), from `offset` on, at most `limit` (None: all), each with its job's status and
    error: one read, so the list is one moment's."""
    status_filter = "" if status is None else " AND jobs.status = ?"
    limit = conn.dialect.no_limit if limit is None else limit
    return conn.execute(
        _IMAGES_WITH_JOBS + status_filter + " ORDER BY jobs.image_number LIMIT ? OFFSET ?",
        (workload_id, *(() if status is None else (status.value,)), limit, offset),
    ).fetchall()


def count_images(conn: Connection, workload_id: int, status: JobStatus | None) -> int:
    """How many images the workload has (in `status`, if given), from the kept counts."""
    status_filter = "" if status is None else " AND status = ?"
    return conn.execute(
        "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM job_counts WHERE workload_id = ?"
        + status_filter,
        (workload_id, *(() if status is None else (status.value,))),
    ).fetchone()[0]


@dataclass
class WorkloadProgress:
    """How many of a workload's jobs are in each status, and which are done or failed."""

    counts: dict[str, int] = field(default_factory=dict)
    started: bool = False  # a job of the workload has been assigned to a worker
    filtered_images: list[int] = field(default_factory=list)
    failed_images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def running(self) -> int:
        return self.counts.get(JobStatus.RUNNING.value, 0)

    @property
    def finished(self) -> int:
        return self.counts.get(JobStatus.DONE.value, 0) + self.counts.get(JobStatus.FAILED.value, 0)

    @property
    def fraction_finished(self) -> float:
        """Done and failed images of all, from 0 to 1 (0 with no images)."""
        return self.finished / self.total if self.total else 0.0

    @property
    def status(self) -> WorkloadStatus:
        return workload_status(self.counts, self.started)


def _filtered_images(conn: Connection, workload_id: int) -> list[int]:
    # The engine builds the list and orjson reads it, both in C: ten thousand Row objects
    # would cost several ms, and the standard library's json.loads 0.8 ms.
    return orjson.loads(
        conn.execute(conn.dialect.job_numbers_json, (workload_id, JobStatus.DONE.value)).fetchone()[
            0
        ]
    )


def workload_status(counts: dict[str, int], started: bool = False) -> WorkloadStatus:
    """Derive a workload's status, which only moves forward while no image is added.

    `scheduling` until its first job started (even if that job is queued again for a retry),
    `running` while any job is queued or running, `completed` when every job is done or
    failed; an upload to a completed workload makes it `running` again.
    """
    if not sum(counts.values()):
        return WorkloadStatus.SCHEDULING
    unfinished = counts.get(JobStatus.QUEUED.value, 0) + counts.get(JobStatus.RUNNING.value, 0)
    if not unfinished:
        return WorkloadStatus.COMPLETED
    began = (JobStatus.RUNNING.value, JobStatus.DONE.value, JobStatus.FAILED.value)
    if started or any(counts.get(status, 0) for status in began):
        return WorkloadStatus.RUNNING
    return WorkloadStatus.SCHEDULING


def workload_progress(
    conn: Connection,
    workload_id: int,
    with_lists: bool = True,
    cache: FilteredImagesCache | None = None,
) -> WorkloadProgress:
    """Count a workload's jobs by status and (unless told not to) list its filtered and
    failed images; `cache` may supply the filtered list."""
    progress = WorkloadProgress()
    for row in conn.execute(
        "SELECT status, count FROM job_counts WHERE workload_id = ? AND count > 0", (workload_id,)
    ):
        progress.counts[row[0]] = row[1]
    started = conn.execute("SELECT started_at FROM workloads WHERE id = ?", (workload_id,))
    progress.started = (started.fetchone() or (None,))[0] is not None
    if not with_lists:
        return progress
    done = progress.counts.get(JobStatus.DONE.value, 0)
    if done:
        cached = cache.get(workload_id, done) if cache else None
        progress.filtered_images = cached or _filtered_images(conn, workload_id)
        if cache and cached is None:
            cache.put(workload_id, done, progress.filtered_images)
    if progress.counts.get(JobStatus.FAILED.value):
        progress.failed_images = [
            {"image_id": row[0], "error": row[1]}
            for row in conn.execute(
                "SELECT image_number, error FROM jobs WHERE workload_id = ? AND status = ?"
                " ORDER BY image_number",
                (workload_id, JobStatus.FAILED.value),
            )
        ]
    return progress


def active_workloads(
    conn: Connection, user_id: int | None
) -> list[tuple[int, str, WorkloadProgress]]:
    """(id, name, progress without lists) of the workloads with a job queued or running, of
    one user or everyone's (`user_id` None), oldest first: one query, whatever their count."""
    user_filter = "" if user_id is None else " AND workloads.user_id = ?"
    rows = conn.execute(
        "SELECT workloads.id, workloads.name, workloads.started_at, all_counts.status,"
        " all_counts.count FROM workloads JOIN job_counts AS all_counts"
        " ON all_counts.workload_id = workloads.id AND all_counts.count > 0"
        " WHERE workloads.id IN (SELECT workload_id FROM job_counts"
        " WHERE status IN (?, ?) AND count > 0)" + user_filter + " ORDER BY workloads.id",
        (JobStatus.QUEUED.value, JobStatus.RUNNING.value) + (() if user_id is None else (user_id,)),
    ).fetchall()
    active: dict[int, tuple[str, WorkloadProgress]] = {}
    for workload_id, name, started_at, status, count in rows:
        _, progress = active.setdefault(
            workload_id, (name, WorkloadProgress(started=started_at is not None))
        )
        progress.counts[status] = count
    return [(workload_id, name, progress) for workload_id, (name, progress) in active.items()]
