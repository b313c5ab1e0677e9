"""A workload's page without a browser: thumbnails made once, kept beside the result, and
refused for another user's workload; failed images listed with their reasons."""

from __future__ import annotations

import html
import io

from PIL import Image

from foundation.defaults import THUMBNAIL_SIDE_PX
from tests.conftest import Cluster, image_bytes
from tests.dashboard.conftest import browser_session
from tests.faults.test_failing_jobs import corrupt_png


def test_a_thumbnail_is_made_once_and_kept_beside_the_result(cluster: Cluster, make_user) -> None:
    owner, other = make_user(), make_user()
    workload = owner.create_workload(workload_name="thumbs")
    workload_id = workload["workload_id"]
    assert owner.upload(workload_id, image_bytes(size=(400, 300))).status_code == 201
    owner.wait_completed(workload_id)
    session = browser_session(cluster, owner.username, owner.password)
    url = f"{cluster.url}/ui/workloads/{workload_id}/thumbnails/0.jpg"

    first = session.get(url, timeout=10)
    assert (first.status_code, first.headers["Content-Type"]) == (200, "image/jpeg")
    with Image.open(io.BytesIO(first.content)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == THUMBNAIL_SIDE_PX
    [stored] = list(cluster.images_dir.glob(f"{workload_id}-thumbs/0.thumb.jpg"))
    made_at = stored.stat().st_mtime_ns
    second = session.get(url, timeout=10)
    assert second.content == first.content
    assert stored.stat().st_mtime_ns == made_at  # served, not made again
    assert not list(stored.parent.glob(".*"))  # no temp file left

    page = session.get(f"{cluster.url}/ui/workloads/{workload_id}", timeout=10)
    assert f"/ui/workloads/{workload_id}/thumbnails/0.jpg" in page.text
    stranger = browser_session(cluster, other.username, other.password)
    assert stranger.get(url, timeout=10).status_code == 404


def test_failed_images_show_with_their_file_and_reason(cluster: Cluster, make_user) -> None:
    owner = make_user()
    workload_id = owner.create_workload(workload_name="mixed")["workload_id"]
    assert owner.upload(workload_id, image_bytes(), name="fine.png").status_code == 201
    broken = owner.upload(workload_id, corrupt_png(), name="<i>broken</i>.png")
    assert broken.status_code == 201
    assert owner.wait_completed(workload_id)["images"]["failed"] == 1
    reason = owner.get(f"/workloads/{workload_id}/images", params={"status": "failed"}).json()[
        "images"
    ][0]["error"]
    session = browser_session(cluster, owner.username, owner.password)

    page = session.get(f"{cluster.url}/ui/workloads/{workload_id}", timeout=10).text
    failed_table = page[page.index('id="failed"') :]
    assert "&lt;i&gt;broken&lt;/i&gt;.png" in failed_table  # the name, as text
    assert reason in html.unescape(failed_table)
    assert "fine.png" not in failed_table
