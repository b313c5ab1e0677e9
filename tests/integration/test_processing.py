"""Both filters end to end on real workers, checked against Pillow's own output."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFilter

from tests.conftest import image_bytes

IMAGES_PER_FILTER = 20


def expected_pixels(data: bytes, filter_name: str, radius: float = 2) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        if filter_name == "grayscale":
            return image.convert("L")
        return image.filter(ImageFilter.GaussianBlur(radius))


def assert_same_image(actual: bytes, expected: Image.Image, fmt: str) -> None:
    with Image.open(io.BytesIO(actual)) as got:
        assert got.format == fmt
        assert got.size == expected.size
        assert got.mode == expected.mode
        if fmt == "PNG":
            assert got.tobytes() == expected.tobytes()
        else:  # lossy: compare with Pillow's own encoding of the expected pixels
            reference = io.BytesIO()
            expected.save(reference, format=fmt, quality=90)
            with Image.open(reference) as ref:
                diffs = [abs(a - b) for a, b in zip(got.tobytes(), ref.tobytes(), strict=True)]
            assert max(diffs) <= 2


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
    for number, data in originals.items():
        response = user.get(
            f"/images/{number}",
            params={"workload_id": workload["workload_id"], "type": "filtered"},
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"] == Image.MIME[fmt]
        assert_same_image(response.content, expected_pixels(data, filter_name), fmt)


def test_frames_uploaded_one_at_a_time_come_back_under_their_numbers(make_user):
    """A video client: upload frame k, fetch filtered frame k with a GET form body."""
    user = make_user()
    workload = user.create_workload(filter="blur", radius=1.5, workload_name="video")
    for frame in range(8):
        data = image_bytes("PNG", seed=100 + frame)
        assert user.upload(workload["workload_id"], data).json()["image_id"] == frame
        user.wait_completed(workload["workload_id"])
        response = user.get(
            f"/images/{frame}",
            data={"workload_id": str(workload["workload_id"]), "type": "filtered"},
        )
        assert response.status_code == 200
        assert_same_image(response.content, expected_pixels(data, "blur", 1.5), "PNG")
        original = user.get(f"/images/{frame}", data={"workload_id": workload["workload_id"]})
        assert original.content == data


def test_tagged_workload_runs_only_on_matching_workers(cluster, make_user):
    user = make_user()
    cluster.start_worker("gpu-worker", tags="gpu,fast")
    try:
        cluster.wait_workers_alive({"gpu-worker"})
        workload = user.create_workload(filter="grayscale", workload_name="tagged", tags=["gpu"])
        assert workload["tags"] == ["gpu"]
        for seed in range(4):
            assert user.upload(workload["workload_id"], image_bytes(seed=seed)).status_code == 201
        assert user.wait_completed(workload["workload_id"])["filtered_images"] == [0, 1, 2, 3]
    finally:
        cluster.stop("gpu-worker")


def test_workload_with_unmatched_tags_waits(make_user):
    user = make_user()
    workload = user.create_workload(workload_name="nobody-has-this", tags=["no-such-tag"])
    assert user.upload(workload["workload_id"], image_bytes()).status_code == 201
    body = user.get(f"/workloads/{workload['workload_id']}").json()
    assert body["status"] == "scheduling"
    assert body["images"]["queued"] == 1
    assert body["filtered_images"] == []
