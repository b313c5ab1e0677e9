"""POST /images with bad bytes or fields: refused in the JSON error shape, nothing stored."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import image_bytes, png_bomb
from tests.imaging.crafted import gif_with_frames, grey_tiff
from tests.security.conftest import UPLOAD_LIMIT, Actor
from tests.security.helpers import assert_error, assert_unchanged, snapshot

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


JPEG = image_bytes("JPEG", size=(64, 48))


def _other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, format=fmt)
    return out.getvalue()


def _two_frames(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), (red, 0, 0)) for red in (0, 200)]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:])
    return out.getvalue()


def _file(alice: Actor, data: bytes, name: str = "x.png", **fields) -> requests.Response:
    return alice.client.post(
        "/images",
        data={"workload_id": alice.workload_id, **fields},
        files={"data": (name, data)},
    )


def _raw(alice: Actor, data, content_type: str = "image/png", **params) -> requests.Response:
    """The image as the whole body (curl --data-binary), its fields in the query string."""
    return alice.client.post(
        "/images",
        params={"workload_id": alice.workload_id, **params},
        data=data,
        headers={"Content-Type": content_type},
    )


def _over_limit_chunks():
    """A raw body over the limit, sent chunked: no Content-Length to check up front."""
    yield image_bytes("PNG")
    for _ in range(UPLOAD_LIMIT // 65536 + 16):
        yield b"\0" * 65536


def _chunked(alice: Actor, size: int) -> requests.Response:
    """A multipart body over the limit, sent chunked: no Content-Length to check up front."""
    boundary = "dpip-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="workload_id"\r\n\r\n'
        f"{alice.workload_id}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="data"; filename="x.png"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def body():
        yield head + image_bytes("PNG")
        for _ in range(size // 65536):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    return alice.client.post(
        "/images",
        data=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


Make = Callable[[Actor, Actor], requests.Response]


CASES: list = [
    pytest.param(lambda a, b: _file(a, b"this is not an image"), 400, "not_an_image", id="text"),
    pytest.param(
        lambda a, b: _file(a, b"<html><script>alert(1)</script></html>", "x.png"),
        400,
        "not_an_image",
        id="html-named-png",
    ),
    pytest.param(lambda a, b: _file(a, b""), 400, "not_an_image", id="zero-bytes"),
    pytest.param(
        lambda a, b: _file(a, JPEG[:200], "x.jpg"), 400, "not_an_image", id="jpeg-cut-in-headers"
    ),
    pytest.param(
        lambda a, b: _file(a, image_bytes("PNG")[:-20]), 400, "not_an_image", id="png-truncated"
    ),
    pytest.param(
        lambda a, b: _file(a, b"\x89PNG\r\n\x1a\n" + b"\0garbage" * 64),
        400,
        "not_an_image",
        id="png-magic-then-garbage",
    ),
    pytest.param(
        lambda a, b: _file(a, _other_format("ICO"), "x.ico"),
        400,
        "not_an_image",
        id="format-not-accepted-ico",
    ),
    pytest.param(
        lambda a, b: _file(a, _other_format("PDF"), "x.pdf"),
        400,
        "not_an_image",
        id="format-not-accepted-pdf",
    ),
    pytest.param(lambda a, b: _file(a, png_bomb()), 413, "image_too_large", id="png-bomb"),
    pytest.param(
        lambda a, b: _file(a, png_bomb(7072, 7072)),  # 50,013,184 pixels: just over the limit
        413,
        "image_too_large",
        id="png-just-over-pixel-limit",
    ),
    pytest.param(
        lambda a, b: _file(a, b"\0" * (UPLOAD_LIMIT + 1024 * 1024)),
        413,
        "payload_too_large",
        id="over-size-limit",
    ),
    pytest.param(
        lambda a, b: _chunked(a, UPLOAD_LIMIT + 1024 * 1024),
        413,
        "payload_too_large",
        id="over-size-limit-chunked",
    ),
    pytest.param(
        lambda a, b: a.client.post("/images", files={"data": ("x.png", image_bytes())}),
        400,
        "missing_field",
        id="missing-workload-id",
    ),
    pytest.param(
        lambda a, b: a.client.post(
            "/images", data={"workload_id": ""}, files={"data": ("x.png", image_bytes())}
        ),
        400,
        "missing_field",
        id="empty-workload-id",
    ),
    *[
        pytest.param(
            lambda a, b, value=value: a.client.post(
                "/images", data={"workload_id": value}, files={"data": ("x.png", image_bytes())}
            ),
            400,
            "invalid_field",
            id=f"workload-id-{label}",
        )
        for label, value in [
            ("text", "abc"),
            ("negative", "-1"),
            ("fraction", "1.5"),
            ("huge", "1" + "0" * 30),
            ("5000-digits", "9" * 5000),
            ("sql", "1 OR 1=1"),
        ]
    ],
    pytest.param(
        lambda a, b: a.client.upload(a.workload_id + 1_000_000, image_bytes()),
        404,
        "not_found",
        id="workload-does-not-exist",
    ),
    pytest.param(
        lambda a, b: a.client.upload(b.workload_id, image_bytes()),
        404,
        "not_found",
        id="someone-elses-workload",
    ),
    pytest.param(
        lambda a, b: a.client.post("/images", data={"workload_id": a.workload_id}),
        400,
        "missing_field",
        id="missing-file",
    ),
    pytest.param(
        lambda a, b: a.client.post(
            "/images",
            data={"workload_id": a.workload_id, "data": "not a file part"},
        ),
        400,
        "missing_field",
        id="file-sent-as-plain-field",
    ),
    pytest.param(
        lambda a, b: a.client.post(
            "/images",
            data={"workload_id": a.workload_id},
            files={"image": ("x.png", image_bytes())},
        ),
        400,
        "missing_field",
        id="file-in-unknown-field",
    ),
    pytest.param(
        lambda a, b: a.client.post("/images", json={"workload_id": a.workload_id}),
        400,
        "missing_field",
        id="json-body-no-file",
    ),
    pytest.param(
        lambda a, b: _file(a, image_bytes(), type="bogus"), 400, "invalid_field", id="type-bogus"
    ),
    pytest.param(
        lambda a, b: _file(a, image_bytes(), type="filtered", image_id=0),
        403,
        "forbidden",
        id="user-uploads-filtered",
    ),
    # the same refusals when the image is the raw body rather than a form's file
    pytest.param(lambda a, b: _raw(a, b"this is not an image"), 400, "not_an_image", id="raw-text"),
    pytest.param(lambda a, b: _raw(a, b""), 400, "not_an_image", id="raw-zero-bytes"),
    pytest.param(
        lambda a, b: _raw(a, JPEG[: len(JPEG) * 3 // 4], "image/jpeg"),
        400,
        "not_an_image",
        id="raw-jpeg-cut-in-scan-data",
    ),
    pytest.param(lambda a, b: _raw(a, png_bomb()), 413, "image_too_large", id="raw-png-bomb"),
    pytest.param(
        lambda a, b: _raw(a, b"\0" * (UPLOAD_LIMIT + 1024 * 1024), "application/octet-stream"),
        413,
        "payload_too_large",
        id="raw-over-size-limit",
    ),
    pytest.param(
        lambda a, b: _raw(a, _over_limit_chunks()),
        413,
        "payload_too_large",
        id="raw-over-size-limit-chunked",
    ),
    pytest.param(
        lambda a, b: a.client.post(
            "/images", data=image_bytes(), headers={"Content-Type": "image/png"}
        ),
        400,
        "missing_field",
        id="raw-missing-workload-id",
    ),
    pytest.param(
        lambda a, b: _raw(a, image_bytes(), workload_id="../1"),
        400,
        "invalid_field",
        id="raw-workload-id-path",
    ),
    pytest.param(
        lambda a, b: _raw(a, image_bytes(), workload_id=b.workload_id),
        404,
        "not_found",
        id="raw-someone-elses-workload",
    ),
    pytest.param(
        lambda a, b: _raw(a, image_bytes(), "text/plain"),
        400,
        "missing_field",
        id="raw-body-not-an-image-type",
    ),
    pytest.param(
        lambda a, b: _raw(a, image_bytes(), type="filtered", image_id=0),
        403,
        "forbidden",
        id="raw-user-uploads-filtered",
    ),
    # regression tests: files cut short after their headers were once accepted (201), and
    # their jobs then failed with 'image file is truncated'
    pytest.param(
        lambda a, b: _file(a, JPEG[: len(JPEG) * 3 // 4], "x.jpg"),
        400,
        "not_an_image",
        id="jpeg-cut-in-scan-data",
    ),
    *[
        pytest.param(
            lambda a, b, fmt=fmt: _file(a, image_bytes(fmt)[: len(image_bytes(fmt)) * 3 // 4]),
            400,
            "not_an_image",
            id=f"{fmt.lower()}-cut-in-pixel-data",
        )
        for fmt in ("GIF", "TIFF", "BMP")
    ],
    # cheap to send, dear to read: refused from their structure, without decoding a pixel
    # (tests/security/test_upload_memory.py has the JPEG of 40,000 scans)
    pytest.param(
        lambda a, b: _raw(a, gif_with_frames(10_001), "image/gif"),
        400,
        "image_too_complex",
        id="gif-of-10001-frames",
    ),
    pytest.param(
        lambda a, b: _raw(a, grey_tiff(rows=50_000), "image/tiff"),
        400,
        "image_too_complex",
        id="tiff-of-50000-strips",
    ),
    pytest.param(
        lambda a, b: _raw(a, grey_tiff(byte_count=10_000), "image/tiff"),
        400,
        "not_an_image",
        id="tiff-strip-past-the-end",
    ),
    pytest.param(
        lambda a, b: _raw(a, _two_frames("GIF")[:-10], "image/gif"),
        400,
        "not_an_image",
        id="gif-cut-in-its-second-frame",
    ),
]


@pytest.mark.parametrize(("make_request", "status", "code"), CASES)
def test_bad_upload_is_refused_and_changes_nothing(cluster, alice, bob, make_request, status, code):
    before = snapshot(cluster)
    response = make_request(alice, bob)
    assert_error(response, status, code)
    assert_unchanged(cluster, before)


@pytest.mark.parametrize(
    ("fmt", "filename"),
    [
        ("PNG", "x.jpg"),
        ("JPEG", "x.png"),
        ("GIF", "x.exe"),
        ("PNG", "../../../escape.png"),
        ("WEBP", "/etc/passwd"),
        ("BMP", "..\\..\\win.bmp"),
        ("PNG", "no-extension"),
    ],
)
def test_the_content_decides_the_format_never_the_file_name(cluster, alice, fmt, filename):
    """PNG bytes named x.jpg are a PNG: stored as .png and served as image/png."""
    data = image_bytes(fmt, seed=7)
    before = snapshot(cluster)
    response = alice.client.post(
        "/images", data={"workload_id": alice.workload_id}, files={"data": (filename, data)}
    )
    assert response.status_code == 201, response.text
    number = response.json()["image_id"]
    extension = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}[fmt]
    new_files = snapshot(cluster).files - before.files
    assert len(new_files) == 1
    ((stored, digest),) = new_files
    assert digest == hashlib.sha256(data).hexdigest()
    assert Path(stored).name == f"{number}.original.{extension}"
    assert Path(stored).parent.name.startswith(f"{alice.workload_id}-")
    assert (
        (Path(cluster.images_dir) / stored)
        .resolve()
        .is_relative_to(Path(cluster.images_dir).resolve())
    )
    downloaded = alice.client.get(f"/images/{number}", params={"workload_id": alice.workload_id})
    assert downloaded.status_code == 200
    assert downloaded.headers["Content-Type"] == Image.MIME[fmt]
    assert downloaded.content == data
    assert filename not in downloaded.headers.get("Content-Disposition", "")
