"""A job over the worker's time limit is stopped, retried, then failed; other jobs run on.

Regression test: without a limit, a job that decodes for minutes (a progressive JPEG of
40,000 empty scans) held its slot for as long, and telemetry kept it listed as running, so
it was never taken back while other users' images waited.
"""

from __future__ import annotations

from foundation.defaults import MAX_JOB_ATTEMPTS
from tests.conftest import ADMIN_PASSWORD, image_bytes, slow_png, start_cluster, wait_until

TIME_LIMIT_S = 1


def test_job_over_the_time_limit_fails_and_a_small_one_still_runs(tmp_path):
    env = {"DPIP_JOB_TIME_LIMIT_S": str(TIME_LIMIT_S)}
    cluster = start_cluster(tmp_path, workers=1, env=env)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        slow = admin.create_workload(filter="blur", radius=8, workload_name="slow")["workload_id"]
        # 27 Mpx: several seconds a job, far over the limit even on a fast machine.
        assert admin.upload(slow, slow_png((6000, 4500))).status_code == 201
        wait_until(
            lambda: admin.get("/status").json()["workers"][0]["running_jobs"] == 1,
            30,
            "the worker to run the slow job",
        )

        response = admin.post("/users", json={"username": "bob", "password": "bob-password"})
        assert response.status_code == 201, response.text
        bob = cluster.login("bob", "bob-password")
        small = bob.create_workload(filter="grayscale", workload_name="small")["workload_id"]
        assert bob.upload(small, image_bytes("PNG")).status_code == 201
        assert bob.wait_completed(small, timeout_s=30)["filtered_images"] == [0]

        done = admin.wait_completed(slow, timeout_s=60)
        assert done["filtered_images"] == []
        [failed] = done["failed_images"]
        assert f"time limit of {TIME_LIMIT_S} s" in failed["error"]
        assert cluster.log("worker-1").count("time limit") == MAX_JOB_ATTEMPTS
    finally:
        cluster.stop_all()
