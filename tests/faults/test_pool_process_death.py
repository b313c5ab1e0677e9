"""A pool process killed under its job costs that job one attempt, and nothing else.

Regression test: with a ProcessPoolExecutor, one `kill -9` broke the whole pool. The next
job's submit raised BrokenProcessPool after the job was counted as running, so the worker
reported `running_jobs: 1` for ever, took no job again, and hung on SIGTERM until killed.
"""

from __future__ import annotations

import signal

import psutil

from tests.conftest import ADMIN_PASSWORD, image_bytes, slow_png, start_cluster, wait_until

STOP_TIMEOUT_S = 10


def pool_processes(worker_pid: int) -> list[psutil.Process]:
    """The worker's pool processes (spawned children; not multiprocessing's helpers)."""
    children = psutil.Process(worker_pid).children()
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def test_killed_pool_process_is_replaced_and_its_job_retried(tmp_path):
    cluster = start_cluster(tmp_path, workers=1)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        worker = cluster.processes["worker-1"]
        [pool] = pool_processes(worker.pid)
        idle_cpu_s = cpu_s(pool)
        wid = admin.create_workload(filter="blur", radius=8, workload_name="v")["workload_id"]
        assert admin.upload(wid, slow_png()).status_code == 201  # a job of ~1 s or more
        wait_until(lambda: cpu_s(pool) > idle_cpu_s + 0.2, 30, "the pool process to filter")
        pool.kill()

        done = admin.wait_completed(wid, timeout_s=30)
        assert done["filtered_images"] == [0]
        assert done["failed_images"] == []
        assert "job 1 failed: pool process" in cluster.log("worker-1")  # killed mid-job
        [replacement] = pool_processes(worker.pid)
        assert replacement.pid != pool.pid

        tiny = admin.create_workload(filter="grayscale", workload_name="after")["workload_id"]
        assert admin.upload(tiny, image_bytes("PNG")).status_code == 201
        assert admin.wait_completed(tiny, timeout_s=30)["filtered_images"] == [0]
        wait_until(
            lambda: admin.get("/status").json()["workers"][0]["running_jobs"] == 0,
            10,
            "the worker to report no running job",
        )

        worker.send_signal(signal.SIGTERM)  # the worker only, as on a graceful stop
        assert worker.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        cluster.stop_all()
