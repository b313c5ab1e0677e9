"""SIGTERM lets a worker finish a job longer than the dead-worker timeout, and keeps it."""

from __future__ import annotations

import signal
import time

from tests.conftest import (
    ADMIN_PASSWORD,
    TELEMETRY_INTERVAL_MS,
    slow_png,
    start_cluster,
    wait_until,
)
from tests.outcomes import job_records


def test_stopped_worker_finishes_its_long_job(tmp_path):
    cluster = start_cluster(tmp_path, workers=1)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(filter="blur", radius=60, workload_name="long")["workload_id"]
        # 49 Mpx (just under the pixel limit): a job of a few seconds, so that it outlives
        # the dead-worker timeout after the signal even when the signal comes late.
        assert admin.upload(wid, slow_png((7000, 7000))).status_code == 201

        def worker_runs_it():  # the worker's own report, not just the assignment
            return admin.get("/status").json()["workers"][0]["running_jobs"] == 1

        wait_until(worker_runs_it, 30, "the worker to run the job")
        worker = cluster.processes.pop("worker-1")
        signalled = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        stopping_s = time.monotonic() - signalled

        body = admin.get(f"/workloads/{wid}").json()
        assert body["filtered_images"] == [0]
        assert body["failed_images"] == []
        # Never taken back (a worker declared dead loses its job): handed out once, and its
        # result came from the stopping worker.
        job = job_records(cluster, wid)[0]
        assert (job.status, job.attempts, job.worker) == ("done", 1, "worker-1")
        # The premise: the job outlived the dead-worker timeout after the signal.
        assert stopping_s > 3 * TELEMETRY_INTERVAL_MS / 1000
    finally:
        cluster.stop_all()
