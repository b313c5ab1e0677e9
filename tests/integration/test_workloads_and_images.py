"""Workload and image endpoints: success, errors, isolation between users, worker tokens."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from protocol import JoinAccepted, JoinRefused
from tests.conftest import (
    Client,
    image_bytes,
    join,
    live_fake_worker,
    png_bomb,
    slow_png,
    wait_until,
)
from tests.outcomes import job_records

pytestmark = pytest.mark.both_engines


def test_create_workload_variants(make_user):
    user = make_user()
    as_json = user.post("/workloads", json={"filter": "blur", "workload_name": "j", "radius": 3})
    as_form = user.post("/workloads", data={"filter": "grayscale", "workload_name": "f"})
    no_body = user.post("/workloads")
    for response in (as_json, as_form, no_body):
        assert response.status_code == 201, response.text
        body = response.json()
        for field in (
            "workload_id",
            "filter",
            "workload_name",
            "status",
            "running_jobs",
            "filtered_images",
        ):
            assert field in body
        assert body["status"] == "scheduling"
        assert body["filtered_images"] == []
    assert as_json.json()["radius"] == 3
    assert no_body.json()["filter"] == "grayscale"
    assert no_body.json()["workload_name"].startswith("workload-")
    listed = user.get("/workloads").json()["workloads"]
    assert [w["workload_name"] for w in listed] == ["j", "f", no_body.json()["workload_name"]]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"filter": "sepia"}, 400, "unknown_filter"),
        ({"filter": "blur", "radius": -1}, 400, "invalid_parameter"),
        ({"filter": "blur", "radius": "big"}, 400, "invalid_parameter"),
        ({"workload_name": "../escape"}, 400, "invalid_workload_name"),
        ({"workload_name": "a/b"}, 400, "invalid_workload_name"),
        ({"workload_name": "x" * 10_000}, 400, "invalid_workload_name"),
        ({"workload_name": "nul\x00byte"}, 400, "invalid_workload_name"),
        ({"tags": "not a list!"}, 400, "invalid_tags"),
        ({"tags": [1, 2]}, 400, "invalid_tags"),
    ],
)
def test_bad_workloads_are_refused_and_change_nothing(make_user, body, status, code):
    user = make_user()
    response = user.post("/workloads", json=body)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert user.get("/workloads").json()["workloads"] == []


def test_duplicate_workload_name_is_409_per_user(make_user):
    alice, bob = make_user(), make_user()
    alice.create_workload(workload_name="same")
    response = alice.post("/workloads", json={"workload_name": "same"})
    assert response.status_code == 409
    assert response.json()["error"] == "duplicate_workload_name"
    assert bob.post("/workloads", json={"workload_name": "same"}).status_code == 201


def test_unicode_workload_name_gets_a_safe_directory(cluster, make_user):
    user = make_user()
    workload = user.create_workload(workload_name="фото 📷 café")
    assert workload["workload_name"] == "фото 📷 café"
    assert user.upload(workload["workload_id"], image_bytes()).status_code == 201
    dirs = [
        p.name
        for p in cluster.images_dir.iterdir()
        if p.name.startswith(f"{workload['workload_id']}-")
    ]
    assert len(dirs) == 1
    assert "/" not in dirs[0] and ".." not in dirs[0]


def test_users_cannot_see_each_others_workloads_or_images(make_user, admin):
    alice, bob = make_user(), make_user()
    workload = alice.create_workload(workload_name="private")
    wid = workload["workload_id"]
    assert alice.upload(wid, image_bytes()).status_code == 201
    assert bob.get(f"/workloads/{wid}").status_code == 404
    assert bob.get("/images/0", params={"workload_id": wid}).status_code == 404
    response = bob.upload(wid, image_bytes())
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert bob.get("/workloads").json()["workloads"] == []
    assert alice.get(f"/workloads/{wid}").json()["images"]["total"] == 1
    assert admin.get(f"/workloads/{wid}").status_code == 200


def test_deleting_a_workload_takes_its_rows_and_files_for_its_owner_only(cluster, make_user):
    alice, bob = make_user(), make_user()
    doomed, kept = (
        alice.create_workload(workload_name=name, tags=["nowhere"])["workload_id"]
        for name in ("doomed", "kept")
    )
    for workload_id in (doomed, doomed, kept):
        assert alice.upload(workload_id, image_bytes()).status_code == 201
    directories = {path.name.split("-")[0]: path for path in cluster.images_dir.iterdir()}
    assert bob.delete(f"/workloads/{doomed}").json()["error"] == "not_found"
    assert directories[str(doomed)].exists() and len(job_records(cluster, doomed)) == 2
    assert alice.delete(f"/workloads/{doomed}").json() == {"deleted": doomed}
    assert alice.get(f"/workloads/{doomed}").status_code == 404
    assert job_records(cluster, doomed) == {}
    assert not directories[str(doomed)].exists()
    assert alice.get(f"/workloads/{kept}").json()["images"]["total"] == 1
    assert directories[str(kept)].exists()
    assert alice.delete(f"/workloads/{doomed}").status_code == 404


@pytest.mark.parametrize(
    ("make_request", "status", "code"),
    [
        (lambda u, wid: u.upload(wid, b"this is not an image"), 400, "not_an_image"),
        (lambda u, wid: u.upload(wid, b""), 400, "not_an_image"),
        (lambda u, wid: u.upload(wid, image_bytes("PNG")[:-20]), 400, "not_an_image"),
        (lambda u, wid: u.upload(wid, png_bomb()), 413, "image_too_large"),
        (lambda u, wid: u.upload(wid, b"\0" * (5 * 1024 * 1024)), 413, "payload_too_large"),
        (lambda u, wid: u.post("/images", data={"workload_id": wid}), 400, "missing_field"),
        (
            lambda u, wid: u.post("/images", files={"data": ("x", image_bytes())}),
            400,
            "missing_field",
        ),
        (lambda u, wid: u.upload(wid + 10_000, image_bytes()), 404, "not_found"),
        (
            lambda u, wid: u.post(
                "/images", data={"workload_id": "abc"}, files={"data": ("x", image_bytes())}
            ),
            400,
            "invalid_field",
        ),
        (
            lambda u, wid: u.post(
                "/images",
                data={"workload_id": wid, "type": "filtered", "image_id": 0},
                files={"data": ("x", image_bytes())},
            ),
            403,
            "forbidden",
        ),
    ],
)
def test_bad_uploads_are_refused_and_change_nothing(cluster, make_user, make_request, status, code):
    user = make_user()
    wid = user.create_workload(workload_name="uploads")["workload_id"]
    response = make_request(user, wid)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["message"]
    assert user.get(f"/workloads/{wid}").json()["images"]["total"] == 0
    leftovers = [p for p in cluster.images_dir.rglob("*") if p.name.startswith(".upload-")]
    assert leftovers == []


def test_upload_accepts_the_file_field_and_every_format(make_user):
    user = make_user()
    wid = user.create_workload(workload_name="formats")["workload_id"]
    for number, fmt in enumerate(["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"]):
        response = user.post(
            "/images", data={"workload_id": wid}, files={"file": ("x", image_bytes(fmt))}
        )
        assert response.status_code == 201, (fmt, response.text)
        assert response.json() == {"workload_id": wid, "image_id": number, "type": "original"}
        downloaded = user.get(f"/images/{number}", params={"workload_id": wid})
        assert downloaded.headers["Content-Type"] == Image.MIME[fmt]
        assert Image.open(io.BytesIO(downloaded.content)).format == fmt


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/octet-stream"])
def test_upload_accepts_the_image_as_the_raw_body(make_user, content_type):
    """curl --data-binary: the content decides the format, whatever the Content-Type says."""
    user = make_user()
    wid = user.create_workload(workload_name="raw", filter="grayscale")["workload_id"]
    data = image_bytes("PNG", seed=3)
    response = user.post(
        "/images", params={"workload_id": wid}, data=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"workload_id": wid, "image_id": 0, "type": "original"}
    downloaded = user.get("/images/0", params={"workload_id": wid})
    assert downloaded.headers["Content-Type"] == "image/png"
    assert downloaded.content == data


def test_download_errors(make_user):
    user = make_user()
    workload = user.create_workload(workload_name="downloads", tags=["nowhere"])
    wid = workload["workload_id"]
    user.upload(wid, image_bytes())
    no_workload = user.get("/images/0")
    assert no_workload.status_code == 400
    assert "workload_id" in no_workload.json()["message"]
    assert user.get("/images/5", params={"workload_id": wid}).status_code == 404
    not_ready = user.get("/images/0", params={"workload_id": wid, "type": "filtered"})
    assert not_ready.status_code == 404
    assert "not ready" in not_ready.json()["message"]
    assert user.get("/images/0", params={"workload_id": wid, "type": "bogus"}).status_code == 400


def test_an_image_whose_file_is_gone_answers_404(cluster, make_user):
    user = make_user()
    wid = user.create_workload(workload_name="vanishing", tags=["nowhere"])["workload_id"]
    assert user.upload(wid, image_bytes()).status_code == 201
    [directory] = Path(cluster.images_dir).glob(f"{wid}-*")
    (directory / "0.original.png").unlink()
    response = user.get("/images/0", params={"workload_id": wid})
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "the original file of image 0 is missing",
    }


def test_status_lists_workers_and_the_callers_active_workloads(cluster, make_user):
    user = make_user()
    workload = user.create_workload(workload_name="stuck", tags=["nowhere"])
    user.upload(workload["workload_id"], image_bytes())
    body = user.get("/status").json()
    assert body["system_name"] == "DPIP"
    assert "T" in body["server_time"]
    assert [w["workload_id"] for w in body["active_workloads"]] == [workload["workload_id"]]
    workers = {w["name"]: w for w in body["workers"]}
    assert workers["worker-1"]["alive"] is True
    for field in ("tags", "cpu", "memory", "gpu", "host", "process", "running_jobs", "last_seen"):
        assert field in workers["worker-1"]
    assert body["active_workloads"][0]["progress"] == 0.0
    assert make_user().get("/status").json()["active_workloads"] == []


def test_status_tells_two_workers_on_one_host_apart(cluster, make_user):
    """Both report the host's figures; each its own process's CPU and memory beside them."""
    user = make_user()
    workload = user.create_workload(filter="blur", radius=30)["workload_id"]
    assert user.upload(workload, slow_png((5000, 5000))).status_code == 201

    def one_busy_one_idle():
        workers = sorted(user.get("/status").json()["workers"], key=lambda w: w["running_jobs"])
        idle, busy = workers[0]["process"], workers[-1]["process"]
        return busy["cpu_percent"] > 50 and idle["cpu_percent"] < 25 and idle["rss_mb"] > 10

    wait_until(one_busy_one_idle, 30, "one worker busy with its own CPU, the other idle")
    for worker in user.get("/status").json()["workers"]:
        assert worker["host"] == {"cpu_percent": worker["cpu"], "memory_percent": worker["memory"]}
    user.wait_completed(workload)


def test_workload_status_moves_forward_with_its_progress(cluster, make_user):
    user = make_user()
    workload = user.create_workload()["workload_id"]
    first = user.get(f"/workloads/{workload}").json()
    assert (first["status"], first["progress"]) == ("scheduling", 0.0)
    for seed in range(6):
        assert user.upload(workload, image_bytes(seed=seed)).status_code == 201
    seen = [first]
    while seen[-1]["status"] != "completed":
        finished = seen[-1]["images"]["done"] + seen[-1]["images"]["failed"]
        seen.append(user.get(f"/workloads/{workload}", params={"wait": 8, "seen": finished}).json())
    order = ["scheduling", "running", "completed"]
    ranks = [order.index(body["status"]) for body in seen]
    assert ranks == sorted(ranks)
    fractions = [body["progress"] for body in seen]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


def test_join_needs_the_join_token(cluster):
    refused = join(cluster, "wrong-token")
    assert isinstance(refused, JoinRefused)
    assert "join token" in refused.reason
    accepted = join(cluster, (cluster.data_dir / "join_token").read_text().strip())
    assert isinstance(accepted, JoinAccepted)
    assert accepted.worker_token


def test_worker_tokens_reach_only_their_jobs(cluster, make_user):
    user = make_user()
    wid = user.create_workload(workload_name="not-for-workers", tags=["nowhere"])["workload_id"]
    user.upload(wid, image_bytes())
    with live_fake_worker(cluster, "snoop") as snoop:
        worker = Client(cluster.url, snoop.accepted.worker_token)
        assert worker.get("/workloads").status_code == 403
        assert worker.get("/status").status_code == 403
        assert worker.post("/workloads").status_code == 403
        assert worker.get("/images/0", params={"workload_id": wid}).status_code == 404
        response = worker.post(
            "/images",
            data={"workload_id": wid, "type": "filtered", "image_id": 0},
            files={"data": ("x", image_bytes())},
        )
        assert response.status_code == 409
        assert response.json()["error"] == "job_not_assigned"
        assert worker.upload(wid, image_bytes()).status_code == 403
    assert user.get(f"/workloads/{wid}").json()["images"] == {
        "total": 1,
        "queued": 1,
        "running": 0,
        "done": 0,
        "failed": 0,
    }


def test_unknown_routes_and_methods_answer_json(admin):
    missing = admin.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = admin.request("PUT", "/workloads")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()
