"""Restarting the API and the controller keeps users, workloads and images; workers re-join."""

from __future__ import annotations

from tests.conftest import ADMIN_PASSWORD, image_bytes, start_cluster, wait_until


def test_restart_of_api_and_controller_keeps_everything(tmp_path):
    cluster = start_cluster(tmp_path)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        assert (
            admin.post("/users", json={"username": "frank", "password": "frank-pass-1"}).status_code
            == 201
        )
        frank = cluster.login("frank", "frank-pass-1")
        workload = frank.create_workload(filter="grayscale", workload_name="survivor")
        wid = workload["workload_id"]
        for seed in range(3):
            frank.upload(wid, image_bytes(seed=seed))
        before = frank.wait_completed(wid)
        original = frank.get("/images/1", params={"workload_id": wid}).content
        filtered = frank.get("/images/1", params={"workload_id": wid, "type": "filtered"}).content

        cluster.stop("api")
        cluster.stop("controller")
        cluster.start_controller()
        cluster.start_api()

        assert frank.get(f"/workloads/{wid}").json() == before  # the old token still works
        assert frank.get("/images/1", params={"workload_id": wid}).content == original
        assert (
            frank.get("/images/1", params={"workload_id": wid, "type": "filtered"}).content
            == filtered
        )
        assert cluster.login("frank", "frank-pass-1")

        def rejoined():
            workers = admin.get("/status").json()["workers"]
            return all(w["alive"] for w in workers) and len(workers) == 2

        wait_until(rejoined, 30, "workers to re-join the new controller")
        assert frank.upload(wid, image_bytes(seed=9)).json()["image_id"] == 3
        assert frank.wait_completed(wid)["filtered_images"] == [0, 1, 2, 3]
    finally:
        cluster.stop_all()


def test_jobs_queued_while_the_controller_is_down_run_when_it_returns(tmp_path, system_env):
    cluster = start_cluster(tmp_path, env=system_env)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(workload_name="waiting")["workload_id"]
        cluster.stop("controller")
        for seed in range(5):
            assert admin.upload(wid, image_bytes(seed=seed)).status_code == 201
        assert admin.get(f"/workloads/{wid}").json()["status"] == "scheduling"
        cluster.start_controller()
        assert admin.wait_completed(wid)["filtered_images"] == [0, 1, 2, 3, 4]
    finally:
        cluster.stop_all()
