"""A job whose filter raises is retried elsewhere, then failed with its reason; nothing hangs."""

from __future__ import annotations

import io

from PIL import Image

from imaging import inspect_image
from tests.conftest import ADMIN_PASSWORD, image_bytes


def truncated_bmp() -> bytes:
    """A BMP cut short: its header passes the upload check, decoding it fails on the worker."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(out, format="BMP")
    data = out.getvalue()[: 54 + 64 * 64]
    inspect_image(data, 10_000)  # the premise: the API accepts it
    return data


def test_failing_image_is_marked_failed_and_the_workload_completes(cluster):
    admin = cluster.login("admin", ADMIN_PASSWORD)
    wid = admin.create_workload(filter="grayscale", workload_name="some-bad")["workload_id"]
    assert admin.upload(wid, image_bytes("BMP")).status_code == 201
    assert admin.upload(wid, truncated_bmp()).status_code == 201
    assert admin.upload(wid, image_bytes("BMP", seed=3)).status_code == 201

    done = admin.wait_completed(wid)
    assert done["filtered_images"] == [0, 2]
    assert done["images"]["failed"] == 1
    [failed] = done["failed_images"]
    assert failed["image_id"] == 1
    assert "truncated" in failed["error"]
    response = admin.get("/images/1", params={"workload_id": wid, "type": "filtered"})
    assert response.status_code == 404
    assert "failed" in response.json()["message"]
    attempts = {
        name: cluster.log(name).count("failed: filter grayscale failed")
        for name in ("worker-1", "worker-2")
    }
    assert sum(attempts.values()) == 3  # the retry limit
    assert all(attempts.values())  # retries moved to the other worker
