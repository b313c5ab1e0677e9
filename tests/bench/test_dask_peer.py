"""The Dask peer's result check and its missing-extra message, without Dask."""

from __future__ import annotations

import importlib.util
from multiprocessing.pool import ThreadPool

import pytest

from bench import dask_peer
from bench.run import parse_args
from stress.images import filter_image_bytes, generate_image

SIZE = (24, 16)


@pytest.fixture(scope="module")
def pool():
    with ThreadPool(2) as threads:
        yield threads


@pytest.mark.parametrize(("image_format", "filter_name"), [("PNG", "grayscale"), ("JPEG", "blur")])
def test_every_result_of_the_reference_filter_is_right(pool, image_format, filter_name):
    originals = [generate_image(index, SIZE, image_format) for index in range(4)]
    results = [filter_image_bytes(data, filter_name, 2.0) for data in originals]
    assert dask_peer.wrong_results(pool, originals, results, filter_name, 2.0, image_format) == 0


def test_a_wrong_missing_or_failed_result_counts_once_each(pool):
    originals = [generate_image(index, SIZE, "PNG") for index in range(5)]
    results: list[bytes | None] = [filter_image_bytes(d, "grayscale", 2.0) for d in originals]
    results[0] = results[1]  # another image's result
    results[2] = None  # its task failed
    results[3] = b"not an image"
    del results[4]  # never gathered
    assert dask_peer.wrong_results(pool, originals, results, "grayscale", 2.0, "PNG") == 4


def test_a_peer_run_is_verified_only_without_wrong_results():
    assert dask_peer.PeerRun(10, 2.0, 0).verified
    assert dask_peer.PeerRun(10, 2.0, 0).images_per_s == 5.0
    assert not dask_peer.PeerRun(10, 2.0, 1).verified


def test_the_dask_peer_without_dask_installed_exits_saying_how_to_install_it(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "distributed" else real_find_spec(name, *args),
    )
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--peer", "dask", "--quick"])
    assert exit_info.value.code == 2
    assert "pip install -e '.[peers]'" in capsys.readouterr().err
