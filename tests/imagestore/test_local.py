"""The local image store on a real directory: staged writes, reads, listing, deletion."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

import pytest

from imagestore import ImageMissing, ImageName, ImageStoreError, LocalImageStore, StoreFull, local

WORKLOAD = "7-holiday"
ORIGINAL = ImageName(0, "original", "png")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    return LocalImageStore(tmp_path / "images")


def _files(store: LocalImageStore) -> list[str]:
    return sorted(p.name for p in (store.root / WORKLOAD).iterdir())


class FailingStream(io.RawIOBase):
    """A stream that hands out some bytes, then fails like a client that went away."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.sent:
            raise ConnectionResetError("the client went away")
        self.sent = True
        buffer[:4] = b"half"
        return 4


def test_a_staged_image_is_invisible_until_committed(store):
    with store.put(WORKLOAD, io.BytesIO(b"pixels")) as staged:
        assert store.list_workload(WORKLOAD) == []
        [temp] = _files(store)
        assert temp.startswith(".")  # hidden, and no image name
        staged.commit(ORIGINAL)
    assert _files(store) == ["0.original.png"]
    assert store.open(WORKLOAD, ORIGINAL).read_bytes() == b"pixels"


def test_a_staged_image_never_committed_is_discarded(store):
    with pytest.raises(RuntimeError), store.put(WORKLOAD, io.BytesIO(b"pixels")):
        raise RuntimeError("the transaction failed")
    assert _files(store) == []
    with store.put(WORKLOAD, io.BytesIO(b"pixels")):
        pass
    assert _files(store) == []


def test_a_failing_stream_leaves_nothing_half_written(store):
    with pytest.raises(ConnectionResetError):
        store.put(WORKLOAD, io.BufferedReader(FailingStream()))
    assert _files(store) == []


def test_commit_replaces_an_image_of_the_same_name_whole(store):
    for data in (b"first", b"second, longer"):
        with store.put(WORKLOAD, io.BytesIO(data)) as staged:
            staged.commit(ORIGINAL)
    assert store.open(WORKLOAD, ORIGINAL).read_bytes() == b"second, longer"


def test_a_large_image_is_copied_whole(store):
    data = os.urandom(local.COPY_CHUNK_BYTES * 2 + 17)
    with store.put(WORKLOAD, io.BytesIO(data)) as staged:
        staged.commit(ORIGINAL)
    assert store.open(WORKLOAD, ORIGINAL).read_bytes() == data


def test_the_root_workload_dirs_and_files_are_private(store):
    with store.put(WORKLOAD, io.BytesIO(b"pixels")) as staged:
        assert _mode(next((store.root / WORKLOAD).iterdir())) == 0o600
        staged.commit(ORIGINAL)
    assert _mode(store.root) == 0o700
    assert _mode(store.root / WORKLOAD) == 0o700
    assert _mode(store.path(WORKLOAD, ORIGINAL)) == 0o600


def test_dirs_left_open_by_an_older_version_are_closed_at_start(tmp_path):
    root = tmp_path / "images"
    old = root / "1-old"
    old.mkdir(parents=True)
    for directory in (root, old):
        directory.chmod(0o755)
    LocalImageStore(root)
    assert _mode(root) == 0o700
    assert _mode(old) == 0o700


def test_open_a_missing_image(store):
    with pytest.raises(ImageMissing, match="the original file of image 0 is missing"):
        store.open(WORKLOAD, ORIGINAL)


def test_list_names_the_images_in_order_and_skips_other_files(store):
    names = [
        ImageName(10, "original", "png"),
        ImageName(2, "filtered", "jpg"),
        ImageName(2, "original", "jpg"),
    ]
    for name in names:
        with store.put(WORKLOAD, io.BytesIO(b"x")) as staged:
            staged.commit(name)
    (store.root / WORKLOAD / "notes.txt").write_text("not an image")
    with store.put(WORKLOAD, io.BytesIO(b"staged")):
        assert store.list_workload(WORKLOAD) == sorted(names)
    assert [n.number for n in store.list_workload(WORKLOAD)] == [2, 2, 10]
    assert store.list_workload("8-never-written") == []


def test_delete_workload_removes_its_images_and_staged_files(store):
    with store.put(WORKLOAD, io.BytesIO(b"x")) as staged:
        staged.commit(ORIGINAL)
    with store.put(WORKLOAD, io.BytesIO(b"staged")):
        store.delete_workload(WORKLOAD)
    assert not (store.root / WORKLOAD).exists()
    store.delete_workload(WORKLOAD)  # gone already: no error
    assert store.list_workload(WORKLOAD) == []


def _full_disk_temp(directory: Path) -> tuple[int, Path]:
    """A temp file whose writes fail as on a full disk: /dev/full answers every write ENOSPC."""
    fd = os.open("/dev/full", os.O_WRONLY)
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / ".upload-full.tmp"
    temp.write_bytes(b"")
    return fd, temp


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_raises_store_full_and_leaves_no_temp_file(store, monkeypatch):
    monkeypatch.setattr(local, "_create_temp", _full_disk_temp)
    with pytest.raises(StoreFull, match="full") as raised:
        store.put(WORKLOAD, io.BytesIO(b"pixels" * 100_000))
    assert raised.value.__cause__.errno == errno.ENOSPC
    assert _files(store) == []


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (errno.ENOSPC, StoreFull),
        (errno.EDQUOT, StoreFull),
        (errno.EACCES, ImageStoreError),
    ],
)
def test_file_system_errors_become_store_errors(store, monkeypatch, code, error):
    def refuse(directory: Path) -> tuple[int, Path]:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(local, "_create_temp", refuse)
    with pytest.raises(error) as raised:
        store.put(WORKLOAD, io.BytesIO(b"pixels"))
    assert type(raised.value) is error


def test_a_failed_commit_raises_a_store_error_and_keeps_nothing(store):
    blocker = store.path(WORKLOAD, ORIGINAL)
    blocker.mkdir(parents=True)  # a directory in the image's place: the rename fails
    (blocker / "inside").write_bytes(b"")
    with store.put(WORKLOAD, io.BytesIO(b"pixels")) as staged, pytest.raises(ImageStoreError):
        staged.commit(ORIGINAL)
    assert _files(store) == [ORIGINAL.file_name]
    assert blocker.is_dir()
