"""The whole system with its images in S3 (a real SeaweedFS): workers move each job's bytes
through presigned URLs, users read images and archives streamed from the store, and
deleting a workload or a user deletes its objects."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from stress.images import Check, result_is_correct
from tests.conftest import Client, image_bytes
from tests.integration.test_batches import _archive, _manifest

IMAGES = 12


@pytest.fixture(scope="module")
def image_store() -> str:
    return "s3"


def _workload_keys(cluster, seaweedfs, workload_id: int) -> list[str]:
    """The objects of one workload (its directory is `<id>-<name>`), staged ones too."""
    mine = (f"{workload_id}-", f".staging/{workload_id}-")
    keys = seaweedfs.keys_under(cluster.env["DPIP_IMAGE_STORE"])
    return [key for key in keys if key.startswith(mine)]


def _filtered_batch(user: Client, count: int = IMAGES) -> tuple[int, list[tuple[str, bytes]]]:
    workload_id = user.create_workload(filter="grayscale")["workload_id"]
    originals = [(f"frame{n:02d}.png", image_bytes("PNG", seed=n)) for n in range(count)]
    response = user.post(
        f"/workloads/{workload_id}/images",
        files=[("data", (name, data)) for name, data in originals],
    )
    assert response.status_code == 201, response.text
    assert user.wait_completed(workload_id)["images"]["done"] == count
    return workload_id, originals


def test_a_batch_goes_through_the_store_and_comes_back_from_it(cluster, seaweedfs, make_user):
    """Every result is Pillow's grayscale of its original, one object per image and kind,
    nothing left staged; single images and both archives stream from the store."""
    user = make_user()
    workload_id, originals = _filtered_batch(user)
    keys = _workload_keys(cluster, seaweedfs, workload_id)
    directory = keys[0].split("/")[0]
    assert keys == sorted(
        f"{directory}/{n}.{kind}.png" for n in range(IMAGES) for kind in ("filtered", "original")
    )
    archive = _archive(user, workload_id)
    assert archive.namelist() == [*(f"{n:06d}.png" for n in range(IMAGES)), "manifest.json"]
    for number, (_, original) in enumerate(originals):
        filtered = archive.read(f"{number:06d}.png")
        assert result_is_correct(Check(original, filtered, "grayscale", 2.0, "PNG")), number
        single = user.get(
            f"/images/{number}", params={"workload_id": workload_id, "type": "filtered"}
        )
        assert single.status_code == 200 and single.content == filtered
        assert single.headers["Content-Length"] == str(len(filtered))
    assert {item["status"] for item in _manifest(archive)} == {"done"}
    originals_zip = _archive(user, workload_id, "original")
    assert [originals_zip.read(f"{n:06d}.png") for n in range(IMAGES)] == [
        data for _, data in originals
    ]
    original = user.get("/images/3", params={"workload_id": workload_id})
    assert original.content == originals[3][1]
    assert Image.open(io.BytesIO(original.content)).size == (32, 24)


def test_deleting_a_workload_or_a_user_deletes_their_objects(cluster, seaweedfs, make_user, admin):
    user, other = make_user(), make_user()
    deleted, *owned = (_filtered_batch(user, 2)[0] for _ in range(3))
    kept, _ = _filtered_batch(other, 2)
    assert user.delete(f"/workloads/{deleted}").json() == {"deleted": deleted}
    assert _workload_keys(cluster, seaweedfs, deleted) == []
    assert all(len(_workload_keys(cluster, seaweedfs, w)) == 4 for w in owned)
    assert admin.delete(f"/users/{user.username}").status_code == 200
    assert all(_workload_keys(cluster, seaweedfs, w) == [] for w in owned)
    assert len(_workload_keys(cluster, seaweedfs, kept)) == 4
