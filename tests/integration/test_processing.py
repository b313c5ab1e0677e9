"""Both filters end to end on real workers, checked against Pillow's own output; tags decide
which workers may run a workload's jobs."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.conftest import image_bytes
from tests.outcomes import job_records, wrong_results

pytestmark = pytest.mark.both_engines


IMAGES_PER_FILTER = 20
TAGGED_IMAGES = 6


@pytest.mark.parametrize("filter_name", ["grayscale", "blur"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_every_result_matches_pillow(make_user, filter_name, fmt):
    user = make_user()
    workload = user.create_workload(filter=filter_name, workload_name=f"{filter_name}-{fmt}")
    originals = {}
    for seed in range(IMAGES_PER_FILTER):
        data = image_bytes(fmt, size=(40 + seed, 30), seed=seed)
        response = user.upload(workload["workload_id"], data)
        assert response.status_code == 201, response.text
        assert response.json()["type"] == "original"
        originals[response.json()["image_id"]] = data
    assert sorted(originals) == list(range(IMAGES_PER_FILTER))

    done = user.wait_completed(workload["workload_id"])
    assert done["filtered_images"] == list(range(IMAGES_PER_FILTER))
    assert done["images"]["done"] == IMAGES_PER_FILTER
    assert done["failed_images"] == []
    assert wrong_results(user, workload["workload_id"], originals, filter_name) == []
    response = user.get(
        "/images/0", params={"workload_id": workload["workload_id"], "type": "filtered"}
    )
    assert response.headers["Content-Type"] == Image.MIME[fmt]


def test_frames_uploaded_one_at_a_time_come_back_under_their_numbers(make_user):
    """A video client: upload frame k, fetch filtered frame k with a GET form body."""
    user = make_user()
    workload = user.create_workload(filter="blur", radius=1.5, workload_name="video")
    for frame in range(8):
        data = image_bytes("PNG", seed=100 + frame)
        assert user.upload(workload["workload_id"], data).json()["image_id"] == frame
        user.wait_completed(workload["workload_id"])
        assert wrong_results(user, workload["workload_id"], {frame: data}, "blur", 1.5) == []
        response = user.get(
            f"/images/{frame}",
            data={"workload_id": str(workload["workload_id"]), "type": "filtered"},
        )
        assert response.status_code == 200
        original = user.get(f"/images/{frame}", data={"workload_id": workload["workload_id"]})
        assert original.content == data


def test_tagged_workload_runs_only_on_matching_workers(cluster, make_user):
    user = make_user()
    cluster.start_worker("gpu-worker", tags="gpu,fast")
    try:
        cluster.wait_workers_alive({"gpu-worker"})
        workload = user.create_workload(filter="grayscale", workload_name="tagged", tags=["gpu"])
        assert workload["tags"] == ["gpu"]
        wid = workload["workload_id"]
        for seed in range(TAGGED_IMAGES):
            assert user.upload(wid, image_bytes(seed=seed)).status_code == 201
        done = user.wait_completed(wid)
    finally:
        cluster.stop("gpu-worker")
    assert done["filtered_images"] == list(range(TAGGED_IMAGES))
    # worker-1 and worker-2 were idle all along: only the tag kept these jobs from them.
    ran_on = {number: record.worker for number, record in job_records(cluster, wid).items()}
    assert ran_on == dict.fromkeys(range(TAGGED_IMAGES), "gpu-worker")


def test_workload_with_unmatched_tags_waits(make_user, cluster):
    user = make_user()
    unmatched = user.create_workload(workload_name="nobody-has-this", tags=["no-such-tag"])
    assert user.upload(unmatched["workload_id"], image_bytes()).status_code == 201
    # Jobs queued after it, which any worker may run, are done: the workers were offered
    # the unmatched job first and had their turn to take it.
    later = user.create_workload(workload_name="queued-after-it")["workload_id"]
    for seed in range(2):
        assert user.upload(later, image_bytes(seed=seed)).status_code == 201
    assert user.wait_completed(later)["filtered_images"] == [0, 1]

    body = user.get(f"/workloads/{unmatched['workload_id']}").json()
    assert body["status"] == "scheduling"
    assert body["images"]["queued"] == 1
    assert body["filtered_images"] == []
    job = job_records(cluster, unmatched["workload_id"])[0]
    assert (job.status, job.attempts, job.worker) == ("queued", 0, None)  # never handed out
