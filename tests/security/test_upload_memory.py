"""Uploads cheap to send and dear to read: the API checks them without decoding a pixel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

import psutil
import requests

from tests.conftest import Client
from tests.imaging.crafted import flat_lossless_webp, jpeg_with_empty_scans
from tests.security.conftest import Actor
from tests.security.helpers import assert_error, assert_unchanged, snapshot

MB = 1024 * 1024
CONCURRENT_UPLOADS = 4
MAX_GROWTH = 150 * MB  # one full decode of the WebP below took 785 MB


def _api_rss(cluster) -> int:
    """Resident memory of the API: the gunicorn master and its request processes."""
    api = psutil.Process(cluster.processes["api"].pid)
    total = 0
    for process in [api, *api.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):  # gone since listed: it holds no memory any more
            total += process.memory_info().rss
    return total


@contextmanager
def peak_rss(cluster) -> Iterator[list[int]]:
    """Sample the API's memory every 5 ms while the block runs; yield [peak] (filled after)."""
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _api_rss(cluster))
            stop.wait(0.005)

    sampler = threading.Thread(target=sample, name="rss-sampler")
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join(timeout=10)
    peak[0] = max(peak[0], _api_rss(cluster))


def _post_raw(url: str, token: str, workload_id: int, data: bytes, mime: str) -> requests.Response:
    """One upload on its own connection, so that concurrent ones share no session."""
    return Client(url, token).post(
        "/images",
        params={"workload_id": workload_id},
        data=data,
        headers={"Content-Type": mime},
    )


def test_concurrent_lossless_webp_uploads_keep_the_api_memory_bounded(cluster, alice: Actor):
    """A 38-byte WebP of 7071x7071 pixels (under the pixel limit) once decoded into 785 MB."""
    data = flat_lossless_webp(7071, 7071)
    before = _api_rss(cluster)
    with peak_rss(cluster) as peak, ThreadPoolExecutor(CONCURRENT_UPLOADS) as pool:
        responses = list(
            pool.map(
                lambda _: _post_raw(
                    cluster.url, alice.client.token, alice.workload_id, data, "image/webp"
                ),
                range(CONCURRENT_UPLOADS),
            )
        )
    assert [response.status_code for response in responses] == [201] * CONCURRENT_UPLOADS
    assert peak[0] - before < MAX_GROWTH, f"the API grew by {(peak[0] - before) // MB} MB"
    assert _api_rss(cluster) - before < MAX_GROWTH


def test_a_jpeg_with_40000_empty_scans_is_refused(cluster, alice: Actor):
    """~400 KB that cost a worker ~14 s per 20,000 scans to decode at 1080p."""
    data = jpeg_with_empty_scans(40_000, size=(1920, 1080))
    before = snapshot(cluster)
    response = _post_raw(cluster.url, alice.client.token, alice.workload_id, data, "image/jpeg")
    body = assert_error(response, 400, "image_too_complex")
    assert "scans" in body["message"]
    assert_unchanged(cluster, before)
