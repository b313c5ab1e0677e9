"""Batches end to end on the real system: many images in one request, listed page by page,
and back in one streamed zip whose entries and manifest match the originals and results."""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from collections.abc import Iterator

import pytest

from stress.images import Check, result_is_correct
from tests.batch_bodies import TAR, ZIP, tar_body, zip_body
from tests.conftest import Client, image_bytes, noise_png
from tests.faults.test_failing_jobs import corrupt_png
from tests.security.test_upload_memory import _api_rss as api_rss
from tests.security.test_upload_memory import peak_rss

pytestmark = pytest.mark.both_engines


MB = 1024 * 1024
NO_WORKER = ["nowhere"]  # a tag no worker has: the workload's jobs stay queued


def _images(client: Client, workload_id: int, **params) -> dict:
    response = client.get(f"/workloads/{workload_id}/images", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _archive(client: Client, workload_id: int, kind: str | None = None) -> zipfile.ZipFile:
    params = {"type": kind} if kind else {}
    response = client.get(f"/workloads/{workload_id}/archive", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def _manifest(archive: zipfile.ZipFile) -> list[dict]:
    assert archive.namelist()[-1] == "manifest.json"
    return json.loads(archive.read("manifest.json"))["images"]


def test_a_form_of_50_images_is_filtered_and_comes_back_in_one_archive(make_user):
    """50 images (one of which fails on the workers) in one multipart request: numbered in
    the order sent with their filenames; the archive holds the 49 results, each Pillow's
    grayscale of its original, and a manifest of all 50."""
    user = make_user()
    workload_id = user.create_workload(filter="grayscale")["workload_id"]
    originals = [
        (
            f"frame{n:03d}.{'jpg' if n % 5 == 0 else 'png'}",
            image_bytes("JPEG" if n % 5 == 0 else "PNG", seed=n),
        )
        for n in range(50)
    ]
    originals[17] = ("broken.png", corrupt_png())
    response = user.post(
        f"/workloads/{workload_id}/images",
        files=[("data", (name, data)) for name, data in originals],
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "workload_id": workload_id,
        "images": [{"image_id": n, "filename": name} for n, (name, _) in enumerate(originals)],
    }
    done = user.wait_completed(workload_id)
    assert done["images"]["done"] == 49 and done["failed_images"][0]["image_id"] == 17

    archive = _archive(user, workload_id)
    names = [f"{n:06d}.{name.rsplit('.')[1]}" for n, (name, _) in enumerate(originals) if n != 17]
    assert archive.namelist() == [*names, "manifest.json"]
    assert archive.testzip() is None
    for entry in names:
        number = int(entry[:6])
        original = originals[number][1]
        image_format = "JPEG" if entry.endswith("jpg") else "PNG"
        check = Check(original, archive.read(entry), "grayscale", 2.0, image_format)
        assert result_is_correct(check), entry
    manifest = _manifest(archive)
    assert [(item["image_id"], item["filename"]) for item in manifest] == [
        (n, name) for n, (name, _) in enumerate(originals)
    ]
    assert {item["status"] for item in manifest if item["image_id"] != 17} == {"done"}
    assert manifest[17]["status"] == "failed" and "broken data stream" in manifest[17]["error"]
    assert all(item["error"] is None for item in manifest if item["image_id"] != 17)

    originals_zip = _archive(user, workload_id, "original")
    assert [
        originals_zip.read(f"{n:06d}.{name.rsplit('.')[1]}")
        for n, (name, _) in enumerate(originals)
    ] == [data for _, data in originals]

    page = _images(user, workload_id, offset=15, limit=4)
    assert (page["total"], page["offset"], page["limit"]) == (50, 15, 4)
    assert [image["image_id"] for image in page["images"]] == [15, 16, 17, 18]
    broken = page["images"][2]
    assert broken["filename"] == "broken.png" and broken["status"] == "failed"
    assert (broken["format"], broken["width"], broken["height"]) == ("PNG", 64, 64)
    assert broken["size"] == len(originals[17][1]) and "broken data stream" in broken["error"]
    failed = _images(user, workload_id, status="failed")
    assert (failed["total"], [i["image_id"] for i in failed["images"]]) == (1, [17])
    done_page = _images(user, workload_id, status="done", offset=48)
    assert (done_page["total"], [i["image_id"] for i in done_page["images"]]) == (49, [49])
    assert _images(user, workload_id, offset=50)["images"] == []
    for params in ({"status": "finished"}, {"limit": 0}, {"limit": 1001}, {"offset": "-1"}):
        response = user.get(f"/workloads/{workload_id}/images", params=params)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_field"), params


def test_zips_and_tars_keep_the_order_and_the_member_names(make_user):
    user = make_user()
    workload_id = user.create_workload(tags=NO_WORKER)["workload_id"]
    first = [("frames/b.png", image_bytes(seed=1)), ("frames/a.png", image_bytes(seed=2))]
    second = [("z.gif", image_bytes("GIF", seed=3)), ("y.bmp", image_bytes("BMP", seed=4))]
    for images, body, kind, numbers in [
        (first, zip_body([("frames/", b""), *first]), ZIP, [0, 1]),
        (second, tar_body(second), TAR, [2, 3]),
    ]:
        response = user.post(
            f"/workloads/{workload_id}/images", data=body, headers={"Content-Type": kind}
        )
        assert response.status_code == 201, response.text
        assert response.json()["images"] == [
            {"image_id": n, "filename": name} for n, (name, _) in zip(numbers, images, strict=True)
        ]
    archive = _archive(user, workload_id, "original")
    entries = ["000000.png", "000001.png", "000002.gif", "000003.bmp"]
    assert archive.namelist() == [*entries, "manifest.json"]
    assert [archive.read(name) for name in entries] == [data for _, data in first + second]
    assert archive.getinfo("000003.bmp").compress_type == zipfile.ZIP_DEFLATED
    assert archive.getinfo("000000.png").compress_type == zipfile.ZIP_STORED
    assert [item["status"] for item in _manifest(archive)] == ["queued"] * 4
    assert _archive(user, workload_id).namelist() == ["manifest.json"]  # no result yet


def test_a_form_of_1000_parts_the_limit_is_taken_whole(make_user):
    """Werkzeug's decoder holds with 1,000 parts: one scratch file, one transaction."""
    user = make_user()
    workload_id = user.create_workload(tags=NO_WORKER)["workload_id"]
    tiny = image_bytes("PNG", size=(4, 4))
    started = time.monotonic()
    response = user.post(
        f"/workloads/{workload_id}/images",
        files=[("data", (f"{n}.png", tiny)) for n in range(1000)],
    )
    print(f"1000 images in one form: {time.monotonic() - started:.2f} s")
    assert response.status_code == 201, response.text
    assert [image["image_id"] for image in response.json()["images"]] == list(range(1000))
    listed = _images(user, workload_id, offset=999, limit=1000)
    assert (listed["total"], listed["images"][0]["filename"]) == (1000, "999.png")


def test_single_uploads_keep_their_filenames(make_user):
    user = make_user()
    workload_id = user.create_workload(tags=NO_WORKER)["workload_id"]
    png = image_bytes()
    assert user.upload(workload_id, png, name="holiday.png").status_code == 201
    raw = {"data": png, "headers": {"Content-Type": "image/png"}}
    named = user.post("/images", params={"workload_id": workload_id, "filename": "raw.png"}, **raw)
    unnamed = user.post("/images", params={"workload_id": workload_id}, **raw)
    assert named.json() == {"workload_id": workload_id, "image_id": 1, "type": "original"}
    assert unnamed.status_code == 201
    listed = _images(user, workload_id)["images"]
    assert [(i["filename"], i["size"], i["status"]) for i in listed] == [
        ("holiday.png", len(png), "queued"),
        ("raw.png", len(png), "queued"),
        (None, len(png), "queued"),
    ]


def _tar_stream(image: bytes, count: int) -> Iterator[bytes]:
    """A tar of `count` copies of `image`, made as it is sent (the test holds one copy)."""
    padding = bytes(-len(image) % tarfile.BLOCKSIZE)
    for number in range(count):
        info = tarfile.TarInfo(f"frame{number:04d}.png")
        info.size = len(image)
        yield info.tobuf() + image + padding
    yield bytes(2 * tarfile.BLOCKSIZE)


def test_a_large_archive_streams_with_flat_api_memory(cluster, make_user, tmp_path):
    """~200 MB in, then out as one zip: the API's memory stays flat throughout."""
    user = make_user()
    workload_id = user.create_workload(tags=NO_WORKER)["workload_id"]
    image = noise_png((800, 800), seed=5)  # ~1.9 MB that PNG cannot shrink
    count = 200 * MB // len(image)
    baseline = api_rss(cluster)
    with peak_rss(cluster) as upload_peak:
        response = user.post(
            f"/workloads/{workload_id}/images",
            data=_tar_stream(image, count),
            headers={"Content-Type": TAR},
        )
    assert response.status_code == 201, response.text
    assert len(response.json()["images"]) == count

    downloaded = tmp_path / "archive.zip"
    baseline = min(baseline, api_rss(cluster))
    with peak_rss(cluster) as download_peak, downloaded.open("wb") as out:
        started = time.monotonic()
        with user.session.get(
            f"{cluster.url}/workloads/{workload_id}/archive",
            params={"type": "original"},
            headers={"Authorization": f"Bearer {user.token}"},
            stream=True,
            timeout=60,
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_content(1024 * 1024):
                out.write(chunk)
        seconds = time.monotonic() - started
    size = downloaded.stat().st_size
    print(
        f"archive: {size / MB:.0f} MB in {seconds:.2f} s ({size / MB / seconds:.0f} MB/s);"
        f" API RSS {baseline / MB:.0f} MB, peak {upload_peak[0] / MB:.0f} MB uploading,"
        f" {download_peak[0] / MB:.0f} MB downloading"
    )
    assert upload_peak[0] - baseline < 80 * MB, "the API grew while the batch came in"
    assert download_peak[0] - baseline < 50 * MB, "the API grew while the archive streamed"
    with zipfile.ZipFile(downloaded) as archive:
        infos = archive.infolist()
        assert [info.filename for info in infos[:-1]] == [f"{n:06d}.png" for n in range(count)]
        assert {info.file_size for info in infos[:-1]} == {len(image)}
        assert archive.read(infos[count // 2]) == image
        manifest = _manifest(archive)
    assert [item["filename"] for item in manifest] == [f"frame{n:04d}.png" for n in range(count)]
