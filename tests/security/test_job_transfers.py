"""The workers' transfers with an S3 image store (a real SeaweedFS): a worker token gets
presigned URLs for its own jobs only, a result counts only once the API has read it back
from where that worker was told to put it and checked it, and a refused one is removed.

No real worker: a job holder (tests/job_holder.py) takes the jobs of a tag, and the test
plays the worker's part with its token; another fake worker attacks with its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import urllib3

from tests.conftest import (
    Client,
    cluster_fixture,
    image_bytes,
    live_fake_worker,
    wait_until,
)
from tests.job_holder import JobHolder, job_holder
from tests.outcomes import grayscale_png, running_on
from tests.security.conftest import UPLOAD_LIMIT, Actor
from tests.security.helpers import assert_error, join_token
from tests.security.test_job_images import fetch

cluster = cluster_fixture(workers=0, env={"DPIP_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})

TAG = "held-for-transfers"
MISSING = 2**62  # a workload id that does not exist
_workload_names = itertools.count()


@pytest.fixture(scope="module")
def image_store() -> str:
    return "s3"


@dataclass(frozen=True)
class Held:
    """Jobs held by the holder, of a workload of their own."""

    holder: Client
    other: Client  # a worker token with no job
    owner: Client
    workload_id: int
    originals: dict[int, bytes]


@pytest.fixture(scope="module")
def holder(cluster) -> Iterator[JobHolder]:
    with job_holder(cluster, "holder", (TAG,), 100, join_token(cluster)) as held:
        yield held


@pytest.fixture(scope="module")
def other(cluster) -> Iterator[Client]:
    with live_fake_worker(cluster, "other") as worker:
        yield Client(cluster.url, worker.accepted.worker_token)


@pytest.fixture
def held(cluster, holder, other, alice: Actor) -> Held:
    """Two images of a new workload, running on the holder."""
    name = f"held-{next(_workload_names)}"
    workload = alice.client.create_workload(workload_name=name, tags=[TAG])["workload_id"]
    originals = {}
    for seed in range(2):
        response = alice.client.upload(workload, image_bytes("PNG", seed=seed))
        assert response.status_code == 201, response.text
        originals[response.json()["image_id"]] = image_bytes("PNG", seed=seed)
    wait_until(
        lambda: {(workload, n) for n in originals} <= running_on(cluster, "holder"),
        10,
        "the holder to run them",
    )
    return Held(holder.client, other, alice.client, workload, originals)


def transfers(client: Client, images: list[tuple[int, int]]) -> list[dict]:
    response = fetch(client, images)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["images"]


def report(client: Client, images: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    response = client.post(
        "/jobs/results",
        json={"results": [{"workload_id": w, "image_id": n} for w, n in images]},
    )
    assert response.status_code == 200, response.text
    return {(a["workload_id"], a["image_id"]): a["status"] for a in response.json()["results"]}


def _status(owner: Client, workload_id: int, number: int) -> str:
    return owner.get(f"/workloads/{workload_id}/images").json()["images"][number]["status"]


def test_a_worker_moves_its_jobs_bytes_through_urls_and_the_api_checks_the_result(held):
    wid = held.workload_id
    [first, second] = transfers(held.holder, [(wid, 0), (wid, 1)])
    assert (first["status"], second["status"]) == ("ok", "ok")
    original = urllib3.request("GET", first["original_url"])
    assert (original.status, original.data) == (200, held.originals[0])
    result = grayscale_png(held.originals[0])
    assert urllib3.request("PUT", first["result_url"], body=result).status == 200
    assert _status(held.owner, wid, 0) == "running"  # uploaded, not yet reported
    assert report(held.holder, [(wid, 0), (wid, 1)]) == {(wid, 0): "stored", (wid, 1): "missing"}
    assert _status(held.owner, wid, 0) == "done"
    filtered = held.owner.get("/images/0", params={"workload_id": wid, "type": "filtered"})
    assert filtered.content == result
    assert _status(held.owner, wid, 1) == "running"  # nothing uploaded: still the holder's


def test_another_worker_gets_no_url_and_cannot_report_their_results(held):
    wid = held.workload_id
    asked = [(wid, 0), (wid, 1), (MISSING, 0)]
    answers = transfers(held.other, asked)
    assert [(a["workload_id"], a["image_id"], a["status"]) for a in answers] == [
        (w, n, "not_assigned") for w, n in asked
    ]
    assert all("original_url" not in a and "result_url" not in a for a in answers)
    [mine] = transfers(held.holder, [(wid, 0)])
    result = grayscale_png(held.originals[0])
    assert urllib3.request("PUT", mine["result_url"], body=result).status == 200
    assert report(held.other, [(wid, 0)]) == {(wid, 0): "not_assigned"}
    assert _status(held.owner, wid, 0) == "running"
    # The holder's upload is untouched: it still completes the job.
    assert report(held.holder, [(wid, 0)]) == {(wid, 0): "stored"}


@pytest.mark.parametrize(
    ("upload", "status"),
    [
        pytest.param(b"not an image at all", "not_an_image", id="not-an-image"),
        pytest.param(b"\x89PNG" + b"x" * UPLOAD_LIMIT, "image_too_large", id="over-the-bound"),
    ],
)
def test_a_refused_result_is_removed_and_its_job_stays(held, upload, status):
    wid = held.workload_id
    [transfer] = transfers(held.holder, [(wid, 0)])
    assert urllib3.request("PUT", transfer["result_url"], body=upload).status == 200
    assert report(held.holder, [(wid, 0)]) == {(wid, 0): status}
    assert _status(held.owner, wid, 0) == "running"
    assert report(held.holder, [(wid, 0)]) == {(wid, 0): "missing"}  # removed when refused


def test_user_tokens_get_no_urls(held, admin):
    for client in (held.owner, admin):
        response = client.post(
            "/jobs/originals", json={"images": [{"workload_id": held.workload_id, "image_id": 0}]}
        )
        assert_error(response, 403, "forbidden")


def test_a_result_url_writes_only_its_own_staging_key(held):
    """The signature covers the key: pointed at the image's own key, or another job's
    upload, the URL is refused."""
    wid = held.workload_id
    [transfer] = transfers(held.holder, [(wid, 0)])
    url = transfer["result_url"]
    for forged in (url.replace("/.staging/", "/"), url.replace("/result-0-", "/result-1-")):
        assert forged != url
        assert urllib3.request("PUT", forged, body=b"forged").status == 403
