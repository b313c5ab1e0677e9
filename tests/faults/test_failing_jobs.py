"""A job whose filter raises is retried elsewhere, then failed with its reason; nothing hangs."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from imaging import inspect_image
from tests.conftest import ADMIN_PASSWORD, image_bytes


def corrupt_png() -> bytes:
    """A PNG whose compressed pixels are garbage under valid checksums: the upload check
    (headers and chunk CRCs) passes it, decoding it on the worker fails."""
    out = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(out, format="PNG")
    data = out.getvalue()
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    pixels = data[start + 8 : start + 8 + length]
    garbage = pixels[:2] + bytes((byte * 7 + 3) % 256 for byte in pixels[2:])
    chunk = (
        struct.pack(">I", len(garbage))
        + b"IDAT"
        + garbage
        + struct.pack(">I", zlib.crc32(b"IDAT" + garbage))
    )
    corrupt = data[:start] + chunk + data[start + 12 + length :]
    inspect_image(corrupt, 10_000)  # the premise: the API accepts it
    return corrupt


def test_failing_image_is_marked_failed_and_the_workload_completes(cluster):
    admin = cluster.login("admin", ADMIN_PASSWORD)
    wid = admin.create_workload(filter="grayscale", workload_name="some-bad")["workload_id"]
    assert admin.upload(wid, image_bytes("PNG")).status_code == 201
    assert admin.upload(wid, corrupt_png()).status_code == 201
    assert admin.upload(wid, image_bytes("PNG", seed=3)).status_code == 201

    done = admin.wait_completed(wid)
    assert done["filtered_images"] == [0, 2]
    assert done["images"]["failed"] == 1
    [failed] = done["failed_images"]
    assert failed["image_id"] == 1
    assert "broken data stream" in failed["error"]
    response = admin.get("/images/1", params={"workload_id": wid, "type": "filtered"})
    assert response.status_code == 404
    assert "failed" in response.json()["message"]
    attempts = {
        name: cluster.log(name).count("failed: filter grayscale failed")
        for name in ("worker-1", "worker-2")
    }
    assert sum(attempts.values()) == 3  # the retry limit
    assert all(attempts.values())  # retries moved to the other worker
