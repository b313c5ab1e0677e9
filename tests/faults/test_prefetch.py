"""A worker killed (`kill -9`) or hung (SIGSTOP) while it holds a full prefetch loses no job,
on either datastore engine.

Each worker takes one job per slot and `prefetch` more waiting for the slot; those waiting
ones are held there too (the datastore shows them running on it). When the worker dies or
hangs, every job it held, started or not, must go back to the queue within the dead-worker
timeout and finish exactly once on the other worker, and a hung worker woken afterwards
must add nothing.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    BUSY_FILTER,
    TELEMETRY_INTERVAL_MS,
    slow_png,
    start_cluster,
    wait_until,
)
from tests.outcomes import assert_done_once, job_records, running_on, wrong_results

PREFETCH = 3
CAPACITY = 1 + PREFETCH  # each worker has one slot
IMAGES = 3 * CAPACITY  # both workers full, and more waiting in the queue
DEAD_AFTER_S = 3 * TELEMETRY_INTERVAL_MS / 1000
# Declared dead after 3 silent intervals, judged at the next tick: the jobs are back in the
# queue within about 4 intervals; the rest is room for a loaded machine.
REQUEUED_WITHIN_S = DEAD_AFTER_S + 10 * TELEMETRY_INTERVAL_MS / 1000


@pytest.mark.parametrize(
    ("fault", "system_env"),
    [(signal.SIGKILL, "sqlite"), (signal.SIGSTOP, "sqlite"), (signal.SIGKILL, "postgresql")],
    ids=["kill-9", "sigstop", "kill-9-postgresql"],
    indirect=["system_env"],
)
def test_a_worker_lost_with_a_full_prefetch_loses_no_job(tmp_path, fault, system_env):
    cluster = start_cluster(tmp_path, env={"DPIP_WORKER_PREFETCH": str(PREFETCH), **system_env})
    victim = cluster.processes["worker-1"]
    stopped = False
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(filter=BUSY_FILTER, workload_name="prefetched")["workload_id"]
        originals = {}
        for data in [slow_png(seed=seed) for seed in range(IMAGES)]:  # made first: sent at once
            response = admin.upload(wid, data)
            assert response.status_code == 201, response.text
            originals[response.json()["image_id"]] = data

        def full() -> set[tuple[int, int]]:
            held = running_on(cluster, "worker-1")
            return held if len(held) == CAPACITY else set()

        held = {number for _, number in wait_until(full, 30, "worker-1 to hold a full prefetch")}
        os.killpg(victim.pid, fault)  # the worker and its pool processes
        stopped = fault == signal.SIGSTOP
        lost_at = time.time()
        started = time.monotonic()
        wait_until(
            lambda: not running_on(cluster, "worker-1"), 30, "worker-1's jobs to be taken back"
        )
        assert time.monotonic() - started < REQUEUED_WITHIN_S

        done = admin.wait_completed(wid, timeout_s=120)
        assert done["filtered_images"] == list(range(IMAGES))
        assert done["failed_images"] == []
        records = job_records(cluster, wid)
        assert_done_once(records, taken_back=held)  # only what it held ran again ...
        assert {records[number].worker for number in held} == {"worker-2"}
        after = {n: r.worker for n, r in records.items() if r.started_at > lost_at}
        assert set(after.values()) == {"worker-2"}  # ... on the living worker

        if stopped:  # woken, it finishes what it ran and uploads it late: turned away
            joins_before = len(cluster.join_ids("worker-1"))
            os.killpg(victim.pid, signal.SIGCONT)
            stopped = False
            cluster.wait_rejoined({"worker-1": joins_before}, timeout_s=15)
            wait_until(lambda: "discarded" in cluster.log("worker-1"), 15, "the late upload")
            assert job_records(cluster, wid) == records  # nothing moved

        assert wrong_results(admin, wid, originals, BUSY_FILTER) == []
        [directory] = cluster.images_dir.glob(f"{wid}-*")
        names = sorted(p.name for p in directory.iterdir())  # temp files are hidden: .upload-*
        assert names == sorted(
            f"{n}.{kind}.png" for n in range(IMAGES) for kind in ("original", "filtered")
        )
    finally:
        if stopped:
            os.killpg(victim.pid, signal.SIGCONT)  # a stopped process would not see SIGTERM
        cluster.stop_all()
