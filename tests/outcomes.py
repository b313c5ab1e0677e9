"""What a run left behind, checked: every result against Pillow's own filter, and from the
datastore how often each job was handed out and which worker ran it last.

A job that ran twice writes the same file twice, so file names cannot show it; the
datastore counts each hand-out (`attempts`) and keeps the worker of the last one.
"""

from __future__ import annotations

import io
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

import datastore
from stress.images import Check, result_is_correct


def database(cluster) -> datastore.Connection | sqlite3.Connection:
    """A connection to the cluster's datastore: its PostgreSQL database, or its SQLite file
    read-only."""
    if url := cluster.env.get("DPIP_DATABASE_URL"):
        return datastore.connect(url)
    path = Path(cluster.data_dir) / "dpip.sqlite3"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


@dataclass(frozen=True)
class JobRecord:
    """One image's job as the datastore holds it."""

    status: str
    worker: str | None  # the name of the worker it was last handed to
    attempts: int  # how many times it was handed to a worker (a refused hand-out not counted)
    error: str
    started_at: float | None  # when it was last handed out (time.time() of the scheduler)


def job_records(cluster, workload_id: int) -> dict[int, JobRecord]:
    """The workload's jobs by image number."""
    conn = database(cluster)
    try:
        rows = conn.execute(
            "SELECT jobs.image_number, jobs.status, workers.name, jobs.attempts, jobs.error,"
            " jobs.started_at FROM jobs LEFT JOIN workers ON workers.id = jobs.worker_id"
            " WHERE jobs.workload_id = ?",
            (workload_id,),
        ).fetchall()
    finally:
        conn.close()
    return {number: JobRecord(*fields) for number, *fields in rows}


def running_on(cluster, worker: str) -> set[tuple[int, int]]:
    """(workload id, image number) of each job the datastore says `worker` runs now."""
    conn = database(cluster)
    try:
        rows = conn.execute(
            "SELECT jobs.workload_id, jobs.image_number FROM jobs"
            " JOIN workers ON workers.id = jobs.worker_id"
            " WHERE jobs.status = 'running' AND workers.name = ?",
            (worker,),
        ).fetchall()
    finally:
        conn.close()
    return set(map(tuple, rows))


def grayscale_png(original: bytes) -> bytes:
    """The grayscale filter's result of `original` as a worker uploads it (a PNG), made by
    the test itself."""
    out = io.BytesIO()
    with Image.open(io.BytesIO(original)) as image:
        image.convert("L").save(out, format="PNG")
    return out.getvalue()


def assert_done_once(records: dict[int, JobRecord], taken_back: set[int] = frozenset()) -> None:
    """Every job is done after one hand-out, except the jobs in `taken_back` (those a fault
    took from their worker mid-run), which may have had exactly one more."""
    assert {n: r.status for n, r in records.items() if r.status != "done"} == {}
    handed_out_again = {n: r.attempts for n, r in records.items() if r.attempts != 1}
    assert set(handed_out_again) <= set(taken_back), handed_out_again
    assert all(attempts == 2 for attempts in handed_out_again.values()), handed_out_again


def wrong_results(
    client, workload_id: int, originals: dict[int, bytes], filter_name: str, radius: float = 2.0
) -> list[int]:
    """The image numbers whose filtered result, downloaded, is not Pillow's result of the
    original (the stress test's check: exact for lossless formats, JPEG within 2)."""
    downloads = {
        number: client.get(
            f"/images/{number}", params={"workload_id": workload_id, "type": "filtered"}
        )
        for number in sorted(originals)
    }

    def is_right(number: int) -> bool:
        original, response = originals[number], downloads[number]
        with Image.open(io.BytesIO(original)) as image:
            image_format = image.format
        check = Check(original, response.content, filter_name, radius, image_format)
        return response.status_code == 200 and result_is_correct(check)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # Pillow filters outside the GIL
        verdicts = dict(zip(downloads, pool.map(is_right, downloads), strict=True))
    return [number for number, right in verdicts.items() if not right]
