"""A full image store answers 507 and leaves no trace; once space is freed, uploads work again.

The cluster's images dir is a 2 MiB tmpfs mounted by the test (it needs root and a kernel
that lets it mount; it skips otherwise).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, noise_png, start_cluster
from tests.outcomes import assert_done_once, job_records, wrong_results

STORE_BYTES = 2 * 1024 * 1024
LEFT_FREE = 400 * 1024  # what the filler leaves: room for about two uploads
MAX_UPLOADS = 20  # the store must be full long before this


@pytest.fixture
def small_store(tmp_path) -> Path:
    """Mount a tmpfs of STORE_BYTES where the cluster keeps its images, unmount it after."""
    mount_point = tmp_path / "images"  # the Cluster's images_dir
    mount_point.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={STORE_BYTES},mode=0700", "tmpfs", mount_point],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except FileNotFoundError:
        pytest.skip("no 'mount' command to make a small tmpfs for the image store")
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {e.stderr.strip()}")
    try:
        yield mount_point
    finally:
        result = subprocess.run(["umount", mount_point], capture_output=True, timeout=10)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=10)


def test_full_store_answers_507_and_recovers(tmp_path, small_store):
    cluster = start_cluster(tmp_path, workers=0)  # no worker: nothing else writes meanwhile
    try:
        assert cluster.images_dir == small_store
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(filter="grayscale", workload_name="full")["workload_id"]

        filler = small_store / "filler.bin"
        free = os.statvfs(small_store).f_bavail * os.statvfs(small_store).f_frsize
        filler.write_bytes(b"\0" * (free - LEFT_FREE))

        stored: list[bytes] = []
        refused = None
        for seed in range(MAX_UPLOADS):
            data = noise_png(seed=seed)  # about 150 KB each, which PNG cannot compress
            response = admin.upload(wid, data)
            if response.status_code != 201:
                refused = response
                break
            assert response.json()["image_id"] == len(stored)
            stored.append(data)
        assert refused is not None, f"no upload was refused after {MAX_UPLOADS}"
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["error"] == "insufficient_storage"
        assert body["message"]
        assert len(stored) >= 1  # the premise: the filler left room for some

        workload = admin.get(f"/workloads/{wid}").json()
        assert workload["images"]["total"] == len(stored)  # no row for the refused upload
        assert workload["images"]["queued"] == len(stored)
        [directory] = small_store.glob(f"{wid}-*")
        names = sorted(p.name for p in directory.iterdir())  # a temp file would show: .upload-*
        assert names == sorted(f"{n}.original.png" for n in range(len(stored)))
        for number, data in enumerate(stored):
            assert (directory / f"{number}.original.png").read_bytes() == data  # none cut short

        filler.unlink()
        data = noise_png(seed=MAX_UPLOADS)
        response = admin.upload(wid, data)
        assert response.status_code == 201, response.text
        assert response.json()["image_id"] == len(stored)  # no number was used up by the 507
        stored.append(data)

        cluster.start_worker("worker-1")  # and the results fit too, each stored at once
        done = admin.wait_completed(wid, timeout_s=60)
        assert done["filtered_images"] == list(range(len(stored)))
        assert sorted(p.name for p in directory.iterdir()) == sorted(
            f"{n}.{kind}.png" for n in range(len(stored)) for kind in ("original", "filtered")
        )
        assert_done_once(job_records(cluster, wid))
        assert wrong_results(admin, wid, dict(enumerate(stored)), "grayscale") == []
    finally:
        cluster.stop_all()
