"""Faults with the images in S3 (a real SeaweedFS): the store gone mid-run, and a worker
killed between its upload and its report. Nothing is lost, and one result is kept."""

from __future__ import annotations

import io
import uuid
import zipfile

import urllib3

from tests.conftest import (
    ADMIN_PASSWORD,
    free_port,
    image_bytes,
    noise_png,
    running_cluster,
    wait_until,
)
from tests.job_holder import job_holder
from tests.outcomes import (
    assert_done_once,
    grayscale_png,
    job_records,
    running_on,
    wrong_results,
)
from tests.seaweedfs_server import S3_BUCKET, SeaweedServer, require_weed
from tests.security.helpers import join_token

TAG = "after-the-holder"


def _wait_done(client, workload_id: int, count: int, timeout_s: float) -> None:
    def done() -> bool:
        return client.get(f"/workloads/{workload_id}").json()["images"]["done"] >= count

    wait_until(done, timeout_s, f"{count} images of workload {workload_id} to be done")


def test_the_store_unreachable_mid_run_loses_nothing(tmp_path):
    """The store is killed after a few results and started again once a worker has had to
    retry: meanwhile a user's read answers 503 image_store_unavailable, and afterwards every
    image is done, once, and right."""
    require_weed()
    with (  # a server of its own, to kill
        SeaweedServer(free_port) as store,
        running_cluster(tmp_path, workers=1, env=store.store_env("outage")) as cluster,
    ):
        store.client().create_bucket(Bucket=S3_BUCKET)
        admin = cluster.login("admin", ADMIN_PASSWORD)
        workload_id = admin.create_workload(filter="blur", params={"radius": 2})["workload_id"]
        originals = {n: noise_png(seed=n) for n in range(40)}
        response = admin.post(
            f"/workloads/{workload_id}/images",
            files=[("data", (f"{n}.png", data)) for n, data in originals.items()],
        )
        assert response.status_code == 201, response.text
        _wait_done(admin, workload_id, 3, 60)
        store.kill()
        unavailable = admin.get("/images/0", params={"workload_id": workload_id})
        assert unavailable.status_code == 503, unavailable.text
        assert unavailable.json()["error"] == "image_store_unavailable"
        wait_until(lambda: "retrying" in cluster.log("worker-1"), 30, "the worker to retry")
        store.start()
        assert admin.wait_completed(workload_id, timeout_s=120)["images"]["done"] == 40
        assert_done_once(job_records(cluster, workload_id))
        assert wrong_results(admin, workload_id, originals, "blur") == []


def test_a_worker_killed_between_its_upload_and_its_report(tmp_path, seaweedfs):
    """The killed worker's upload (a wrong image, to tell them apart) stays staged, never
    seen; the job runs again on a real worker, whose result is the one kept."""
    env = seaweedfs.store_env(f"killed-{uuid.uuid4().hex}")
    with running_cluster(tmp_path, workers=0, env=env) as cluster:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        workload_id = admin.create_workload(filter="grayscale", tags=[TAG])["workload_id"]
        original = image_bytes("PNG", seed=7)
        with job_holder(cluster, "holder", (TAG,), 1, join_token(cluster)) as holder:
            assert admin.upload(workload_id, original).status_code == 201
            wait_until(lambda: running_on(cluster, "holder"), 10, "the holder to run the job")
            answer = holder.client.post(
                "/jobs/originals", json={"images": [{"workload_id": workload_id, "image_id": 0}]}
            )
            [transfer] = answer.json()["images"]
            wrong = image_bytes("PNG", seed=99)
            assert urllib3.request("PUT", transfer["result_url"], body=wrong).status == 200
            unseen = admin.get("/images/0", params={"workload_id": workload_id, "type": "filtered"})
            assert unseen.status_code == 404  # uploaded, not reported: nobody sees it
            holder.die()
            wait_until(lambda: not running_on(cluster, "holder"), 10, "the job to be taken back")
            cluster.start_worker("worker-1", tags=TAG)
            assert admin.wait_completed(workload_id, timeout_s=60)["images"]["done"] == 1
            late = holder.client.post(
                "/jobs/results", json={"results": [{"workload_id": workload_id, "image_id": 0}]}
            )
            assert late.status_code == 401 or late.json()["results"][0]["status"] != "stored"
        filtered = admin.get("/images/0", params={"workload_id": workload_id, "type": "filtered"})
        assert filtered.content == grayscale_png(original) != wrong
        assert job_records(cluster, workload_id)[0].attempts == 2
        keys = seaweedfs.keys_under(cluster.env["DPIP_IMAGE_STORE"])
        names = [key.rsplit("/", 1)[-1] for key in keys]
        assert names.count("0.filtered.png") == 1
        # The killed worker's upload stays staged (until the workload's objects go), the
        # real worker's went with its commit; no listing shows either.
        assert [name for name in names if name.startswith("result-")] == [
            transfer["result_url"].split("?")[0].rsplit("/", 1)[-1]
        ]
        archive = zipfile.ZipFile(
            io.BytesIO(admin.get(f"/workloads/{workload_id}/archive").content)
        )
        assert archive.namelist() == ["000000.png", "manifest.json"]
