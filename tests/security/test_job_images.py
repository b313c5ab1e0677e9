"""The workers' batch endpoints: a worker token reaches only its own jobs' images, a user
token none, and a malformed batch changes nothing.

A system of its own, with no real worker: a fake worker (`holder`) joins with an rpc port
that takes every job it is sent, so the jobs of one workload run on it and stay there;
another fake worker, with nothing assigned, attacks them with its own valid token.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from protocol.image_frames import CONTENT_TYPE, frame_head, read_frames
from tests.conftest import (
    Client,
    cluster_fixture,
    image_bytes,
    live_fake_worker,
    wait_until,
)
from tests.job_holder import job_holder
from tests.outcomes import grayscale_png, running_on
from tests.security.conftest import UPLOAD_LIMIT, Actor
from tests.security.helpers import assert_error, assert_unchanged, join_token, snapshot

cluster = cluster_fixture(workers=0, env={"DPIP_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})

TAG = "held-by-a-fake-worker"
IMAGES = 2
MISSING = 2**62  # a workload id that does not exist


@dataclass(frozen=True)
class Scene:
    holder: Client  # the worker token of the fake worker the jobs run on
    other: Client  # the worker token of a fake worker with no job
    workload_id: int
    originals: dict[int, bytes]  # by image number


@pytest.fixture(scope="module")
def scene(cluster, alice: Actor) -> Iterator[Scene]:
    with job_holder(cluster, "holder", (TAG,), IMAGES, join_token(cluster)) as holder:
        workload = alice.client.create_workload(workload_name="held", tags=[TAG])["workload_id"]
        originals = {}
        for seed in range(IMAGES):
            response = alice.client.upload(workload, image_bytes("PNG", seed=seed))
            assert response.status_code == 201, response.text
            originals[response.json()["image_id"]] = image_bytes("PNG", seed=seed)
        wait_until(
            lambda: len(running_on(cluster, "holder")) == IMAGES, 10, "the holder to run them"
        )
        with live_fake_worker(cluster, "other") as other:
            yield Scene(
                holder.client,
                Client(cluster.url, other.accepted.worker_token),
                workload,
                originals,
            )


def fetch(client: Client, images: list[tuple[int, int]]):
    return client.post(
        "/jobs/originals",
        json={"images": [{"workload_id": w, "image_id": n} for w, n in images]},
    )


def frames_of(response) -> list[tuple[dict, bytes]]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"] == CONTENT_TYPE
    return list(read_frames(io.BytesIO(response.content).read, UPLOAD_LIMIT))


def deliver(client: Client, results: list[tuple[int, int, bytes]], **kwargs):
    body = b"".join(
        frame_head({"workload_id": w, "image_id": n}, len(data)) + data for w, n, data in results
    )
    return client.post("/jobs/results", data=body, headers={"Content-Type": CONTENT_TYPE}, **kwargs)


def test_a_worker_fetches_its_own_jobs_originals_in_one_answer(scene):
    wid = scene.workload_id
    frames = frames_of(fetch(scene.holder, [(wid, n) for n in sorted(scene.originals)]))
    assert [(h["image_id"], h["status"], data) for h, data in frames] == [
        (n, "ok", scene.originals[n]) for n in sorted(scene.originals)
    ]


def test_another_workers_token_gets_no_original_and_learns_nothing(cluster, scene):
    """Regression test for a batch endpoint that checked the workload's existence, or any
    worker's hold, instead of this worker's: the frames would carry the images or differ."""
    before = snapshot(cluster)
    wid = scene.workload_id
    asked = [(wid, 0), (wid, 1), (wid, 99), (MISSING, 0)]
    frames = frames_of(fetch(scene.other, asked))
    assert [(h["workload_id"], h["image_id"]) for h, _ in frames] == asked
    assert {(h["status"], h["size"], data) for h, data in frames} == {("not_assigned", 0, b"")}
    assert_unchanged(cluster, before)


def test_another_workers_token_cannot_deliver_their_results(cluster, scene):
    before = snapshot(cluster)
    wid = scene.workload_id
    result = grayscale_png(scene.originals[0])
    response = deliver(scene.other, [(wid, 0, result), (MISSING, 0, result)])
    assert response.status_code == 200, response.text
    answers = response.json()["results"]
    assert [(a["workload_id"], a["status"]) for a in answers] == [
        (wid, "not_assigned"),
        (MISSING, "not_assigned"),
    ]
    assert answers[0]["message"] == answers[1]["message"]
    assert_unchanged(cluster, before)


@pytest.mark.parametrize("who", ["owner", "admin"])
@pytest.mark.parametrize("endpoint", ["originals", "results"])
def test_a_user_token_may_not_use_the_worker_batch_endpoints(
    cluster, scene, admin, alice, who, endpoint
):
    client = {"owner": alice.client, "admin": admin}[who]
    before = snapshot(cluster)
    wid = scene.workload_id
    if endpoint == "originals":
        response = fetch(client, [(wid, 0)])
    else:
        response = deliver(client, [(wid, 0, grayscale_png(scene.originals[0]))])
    assert_error(response, 403, "forbidden")
    assert_unchanged(cluster, before)


def _frames_with_header(header: bytes, rest: bytes = b"") -> bytes:
    return struct.pack(">I", len(header)) + header + rest


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"\x00\x00", CONTENT_TYPE, id="cut-prefix"),
        pytest.param(_frames_with_header(b'{"workload_id": 1'), CONTENT_TYPE, id="cut-header"),
        pytest.param(
            _frames_with_header(b'{"workload_id": 1, "image_id": 0, "size": 10}', b"abc"),
            CONTENT_TYPE,
            id="cut-image",
        ),
        pytest.param(struct.pack(">I", 1 << 30) + b"{}", CONTENT_TYPE, id="huge-header"),
        pytest.param(
            _frames_with_header(
                json.dumps({"workload_id": 1, "image_id": 0, "size": 2**40}).encode()
            ),
            CONTENT_TYPE,
            id="terabyte-image-claimed",
        ),
        pytest.param(_frames_with_header(b'{"image_id": 0, "size": 0}'), CONTENT_TYPE, id="no-id"),
        pytest.param(
            _frames_with_header(b'{"workload_id": "1", "image_id": 0, "size": 0}'),
            CONTENT_TYPE,
            id="id-as-text",
        ),
        pytest.param(image_bytes(), "image/png", id="a-plain-image"),
    ],
)
def test_malformed_results_change_nothing(cluster, scene, body, content_type):
    before = snapshot(cluster)
    response = scene.holder.post("/jobs/results", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "message"}
    assert_unchanged(cluster, before)


def test_a_result_named_twice_changes_nothing(cluster, scene):
    before = snapshot(cluster)
    result = grayscale_png(scene.originals[0])
    response = deliver(scene.holder, [(scene.workload_id, 0, result)] * 2)
    assert_error(response, 400, "invalid_field")
    assert_unchanged(cluster, before)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-images"),
        pytest.param({"images": []}, id="empty"),
        pytest.param({"images": "0"}, id="not-a-list"),
        pytest.param({"images": [7]}, id="not-objects"),
        pytest.param({"images": [{"workload_id": 1}]}, id="no-image-id"),
        pytest.param({"images": [{"workload_id": -1, "image_id": 0}]}, id="negative-id"),
        pytest.param({"images": [{"workload_id": 1.0, "image_id": 0}]}, id="float-id"),
        pytest.param({"images": [{"workload_id": True, "image_id": 0}]}, id="bool-id"),
        pytest.param({"images": [{"workload_id": 1, "image_id": 0}] * 2}, id="twice"),
    ],
)
def test_malformed_fetches_answer_400(cluster, scene, body):
    before = snapshot(cluster)
    response = scene.holder.post("/jobs/originals", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "message"}
    assert_unchanged(cluster, before)


def test_a_result_that_is_not_an_image_is_refused_alone(cluster, scene):
    """Each result is checked like an upload; the others of its batch are stored."""
    wid = scene.workload_id
    response = deliver(scene.holder, [(wid, 0, b"not an image"), (wid, 1, b"")])
    assert [a["status"] for a in response.json()["results"]] == ["not_an_image", "not_an_image"]
    assert len(running_on(cluster, "holder")) == IMAGES
    response = deliver(
        scene.holder,
        [(wid, 0, b"\x89PNG\r\n\x1a\nbroken"), (wid, 1, grayscale_png(scene.originals[1]))],
    )
    assert [a["status"] for a in response.json()["results"]] == ["not_an_image", "stored"]
    assert running_on(cluster, "holder") == {(wid, 0)}
    [directory] = cluster.images_dir.glob(f"{wid}-*")
    assert sorted(p.name for p in directory.iterdir()) == [
        "0.original.png",
        "1.filtered.png",
        "1.original.png",
    ]


def test_the_owner_delivers_a_result_and_a_second_delivery_is_refused(cluster, scene, alice):
    wid = scene.workload_id
    result = grayscale_png(scene.originals[0])
    response = deliver(scene.holder, [(wid, 0, result)])
    assert [a["status"] for a in response.json()["results"]] == ["stored"]
    assert running_on(cluster, "holder") == set()
    downloaded = alice.client.get("/images/0", params={"workload_id": wid, "type": "filtered"})
    assert downloaded.content == result
    before = snapshot(cluster)
    again = deliver(scene.holder, [(wid, 0, result)])
    assert [a["status"] for a in again.json()["results"]] == ["not_assigned"]
    assert frames_of(fetch(scene.holder, [(wid, 0)]))[0][0]["status"] == "not_assigned"
    assert_unchanged(cluster, before)


def test_a_worker_batch_past_the_image_limit_answers_413(cluster, scene):
    """A worker's batch is a few jobs; a million tiny frames or names would cost the API
    a million entries before any lookup. Past the batch upload's limit (1000) it stops."""
    before = snapshot(cluster)
    names = [{"workload_id": MISSING, "image_id": n} for n in range(1001)]
    assert_error(
        scene.holder.post("/jobs/originals", json={"images": names}), 413, "too_many_images"
    )
    frames = b"".join(frame_head({"workload_id": MISSING, "image_id": n}, 0) for n in range(1001))
    response = scene.holder.post(
        "/jobs/results", data=frames, headers={"Content-Type": CONTENT_TYPE}
    )
    assert_error(response, 413, "too_many_images")
    assert_unchanged(cluster, before)
