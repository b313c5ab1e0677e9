"""A request's scratch file: on the images' disk, never visible, gone at the block's end."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from imagestore import LocalImageStore, StoreFull, local

WORKLOAD = "7-holiday"


def test_a_scratch_file_is_never_listed_and_leaves_nothing(tmp_path):
    store = LocalImageStore(tmp_path / "images")
    with store.scratch(WORKLOAD) as scratch:  # the workload's first use makes its directory
        assert list((store.root / WORKLOAD).iterdir()) == []
        scratch.write(b"body" * 1000)
        scratch.seek(0)
        assert scratch.read(8) == b"bodybody"
        assert os.fstat(scratch.fileno()).st_dev == os.stat(store.root).st_dev
    assert scratch.closed
    assert list((store.root / WORKLOAD).iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_store_full():
    full = local.ScratchFile(os.open("/dev/full", os.O_WRONLY), "w")
    with full, pytest.raises(StoreFull) as raised:
        full.write(b"x")
    assert raised.value.__cause__.errno == errno.ENOSPC
