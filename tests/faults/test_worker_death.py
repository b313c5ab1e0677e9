"""A worker killed with SIGKILL mid-run loses no job and leaves no duplicate or orphan, on
either datastore engine."""

from __future__ import annotations

import functools
import os
import signal
import time

import psutil
import pytest

from tests.conftest import ADMIN_PASSWORD, noise_png, start_cluster, wait_until
from tests.outcomes import assert_done_once, job_records, running_on, wrong_results

IMAGES = 12
SIZE = (1200, 900)  # slow enough to blur (~0.3 s a job) that the kill lands mid-job
RADIUS = 8


@functools.cache
def originals() -> dict[int, bytes]:
    """Distinct images, made once for both tests: a result swapped or run twice would show."""
    return {number: noise_png(SIZE, seed=number) for number in range(IMAGES)}


@pytest.mark.parametrize(
    ("kill_pool_too", "system_env"),
    [(True, "sqlite"), (False, "sqlite"), (True, "postgresql")],
    ids=["process-group", "main-only", "process-group-postgresql"],
    indirect=["system_env"],
)
def test_killed_worker_loses_no_job(tmp_path, kill_pool_too, system_env):
    cluster = start_cluster(tmp_path, env=system_env)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        workload = admin.create_workload(filter="blur", radius=RADIUS, workload_name="victims")
        wid = workload["workload_id"]
        for number, data in originals().items():
            response = admin.upload(wid, data)
            assert response.status_code == 201, response.text
            assert response.json()["image_id"] == number

        wait_until(lambda: running_on(cluster, "worker-1"), 30, "worker-1 to run a job")
        victim = cluster.processes.pop("worker-1")
        pool = psutil.Process(victim.pid).children(recursive=True)
        if kill_pool_too:
            os.killpg(victim.pid, signal.SIGKILL)
        else:
            victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        # Until it is declared dead, the datastore still shows what it held when it died.
        held = {number for w, number in running_on(cluster, "worker-1") if w == wid}
        victim.wait(timeout=10)

        done = admin.wait_completed(wid, timeout_s=120)
        assert done["filtered_images"] == list(range(IMAGES))
        assert done["failed_images"] == []
        records = job_records(cluster, wid)
        assert_done_once(records, taken_back=held)  # only what it held ran again ...
        after_kill = {n: r.worker for n, r in records.items() if r.started_at > killed_at}
        assert set(after_kill.values()) <= {"worker-2"}  # ... on the living worker
        assert wrong_results(admin, wid, originals(), "blur", RADIUS) == []
        files = sorted(p.name for p in (cluster.images_dir).glob(f"{wid}-*/*"))
        assert len(files) == 2 * IMAGES
        assert all(not name.startswith(".") for name in files)
        _, alive = psutil.wait_procs(pool, timeout=10)
        assert alive == []  # pool processes do not outlive their worker
        wait_until(
            lambda: (
                {w["name"]: w["alive"] for w in admin.get("/status").json()["workers"]}
                == {"worker-1": False, "worker-2": True}
            ),
            10,
            "worker-1 dead and worker-2 alive in /status",
        )
    finally:
        cluster.stop_all()
