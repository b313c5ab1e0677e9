"""Restarting the controller, then the API, in the middle of a run of a few hundred images.

Every image must finish exactly once (only a job in flight at the restart may be handed out
once more) with the right pixels, and the workers must re-join by themselves under their
names (and ids).
"""

from __future__ import annotations

from tests.conftest import ADMIN_PASSWORD, Client, Cluster, image_bytes, start_cluster, wait_until
from tests.outcomes import assert_done_once, job_records, wrong_results

IMAGES = 240
BATCH = 80  # images a request: all queued within a moment, so a backlog builds at once
SIZE = (256, 192)  # a few ms a job: the run lasts long enough to be stopped in the middle


def small_png(seed: int) -> bytes:
    return image_bytes("PNG", size=SIZE, seed=seed)


def upload_all(client: Client, wid: int) -> dict[int, int]:
    """Upload IMAGES distinct images in a few batches; return each image number's seed."""
    seeds = {}
    for first in range(0, IMAGES, BATCH):
        batch = range(first, first + BATCH)
        files = [("data", (f"{seed}.png", small_png(seed), "image/png")) for seed in batch]
        response = client.post(f"/workloads/{wid}/images", files=files)
        assert response.status_code == 201, response.text
        seeds.update(
            (image["image_id"], seed)
            for image, seed in zip(response.json()["images"], batch, strict=True)
        )
    assert sorted(seeds) == list(range(IMAGES))
    return seeds


def done_count(client: Client, wid: int) -> int:
    return client.get(f"/workloads/{wid}").json()["images"]["done"]


def join_ids(cluster: Cluster) -> dict[str, list[int]]:
    return {name: cluster.join_ids(name) for name in ("worker-1", "worker-2")}


def in_flight(cluster: Cluster, wid: int) -> set[int]:
    """The image numbers whose jobs the datastore shows running now."""
    return {n for n, record in job_records(cluster, wid).items() if record.status == "running"}


def assert_every_image_finished_once(
    cluster: Cluster, client: Client, wid: int, seeds: dict[int, int], taken_back: set[int]
) -> None:
    total = len(seeds)
    body = client.wait_completed(wid, timeout_s=60)
    assert body["failed_images"] == []
    assert body["filtered_images"] == list(range(total))
    assert body["images"] == {"total": total, "queued": 0, "running": 0, "done": total, "failed": 0}
    [directory] = cluster.images_dir.glob(f"{wid}-*")
    names = sorted(p.name for p in directory.iterdir())  # temp files would show: .upload-*
    assert names == sorted(
        f"{n}.{kind}.png" for n in range(total) for kind in ("original", "filtered")
    )
    records = job_records(cluster, wid)
    assert_done_once(records, taken_back)
    assert {record.worker for record in records.values()} <= {"worker-1", "worker-2"}
    originals = {number: small_png(seed) for number, seed in seeds.items()}
    assert wrong_results(client, wid, originals, "grayscale") == []


def assert_workers_rejoined(cluster: Cluster, client: Client, ids_before: dict[str, list[int]]):
    cluster.wait_rejoined({name: len(ids) for name, ids in ids_before.items()}, timeout_s=30)
    workers = client.get("/status").json()["workers"]
    assert sorted(w["name"] for w in workers) == ["worker-1", "worker-2"]  # no newcomer
    assert all(w["alive"] for w in workers)
    ids_after = join_ids(cluster)
    for name in ("worker-1", "worker-2"):
        assert len(ids_after[name]) > len(ids_before[name])  # it did join again ...
        assert set(ids_after[name]) == {ids_before[name][0]}  # ... under the same id


def test_controller_restart_in_the_middle_of_a_run(tmp_path):
    cluster = start_cluster(tmp_path)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(filter="grayscale", workload_name="ctl-restart")["workload_id"]
        ids_before = join_ids(cluster)
        seeds = upload_all(admin, wid)
        wait_until(lambda: done_count(admin, wid) >= 20, 30, "the run to be under way")

        cluster.stop("controller")
        taken_back = in_flight(cluster, wid)  # nothing starts until it is back
        assert done_count(admin, wid) < IMAGES  # the run is really in the middle
        cluster.start_controller()

        assert_every_image_finished_once(cluster, admin, wid, seeds, taken_back)
        assert_workers_rejoined(cluster, admin, ids_before)
    finally:
        cluster.stop_all()


def test_api_restart_in_the_middle_of_a_run(tmp_path):
    cluster = start_cluster(tmp_path)
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(filter="grayscale", workload_name="api-restart")["workload_id"]
        ids_before = join_ids(cluster)
        seeds = upload_all(admin, wid)
        wait_until(lambda: done_count(admin, wid) >= 20, 30, "the run to be under way")

        assert done_count(admin, wid) < IMAGES  # the run is really in the middle
        cluster.stop("api")
        taken_back = in_flight(cluster, wid)
        cluster.start_api()

        # The old token works; the workers wait for the API, so no other job runs again.
        assert_every_image_finished_once(cluster, admin, wid, seeds, taken_back)
        cluster.wait_workers_alive({"worker-1", "worker-2"}, timeout_s=30)
        workers = admin.get("/status").json()["workers"]
        assert sorted(w["name"] for w in workers) == ["worker-1", "worker-2"]
        assert join_ids(cluster) == ids_before  # the controller kept them: no re-join needed
    finally:
        cluster.stop_all()
