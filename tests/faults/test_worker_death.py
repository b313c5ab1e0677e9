"""A worker killed with SIGKILL mid-run loses no job and leaves no duplicate or orphan."""

from __future__ import annotations

import io
import os
import signal

import psutil
import pytest
from PIL import Image

from tests.conftest import ADMIN_PASSWORD, start_cluster, wait_until

IMAGES = 30


def noise_png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("kill_pool_too", [True, False], ids=["process-group", "main-only"])
def test_killed_worker_loses_no_job(tmp_path, kill_pool_too):
    cluster = start_cluster(tmp_path)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        workload = admin.create_workload(filter="blur", radius=8, workload_name="victims")
        wid = workload["workload_id"]
        slow_image = noise_png((1200, 900))  # slow enough to blur that a kill lands mid-job
        for _ in range(IMAGES):
            assert admin.upload(wid, slow_image).status_code == 201

        def worker_1_busy():
            workers = admin.get("/status").json()["workers"]
            return any(w["name"] == "worker-1" and w["running_jobs"] > 0 for w in workers)

        wait_until(worker_1_busy, 30, "worker-1 to run a job")
        victim = cluster.processes.pop("worker-1")
        pool = psutil.Process(victim.pid).children(recursive=True)
        if kill_pool_too:
            os.killpg(victim.pid, signal.SIGKILL)
        else:
            victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        done = admin.wait_completed(wid, timeout_s=120)
        assert done["filtered_images"] == list(range(IMAGES))
        assert done["images"]["done"] == IMAGES
        assert done["failed_images"] == []
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
