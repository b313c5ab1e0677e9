"""Finding images under the paths named: by content, recursively, in a stable order."""

from __future__ import annotations

import os

import pytest

from dpip.image_files import UnreadableFile, find_images
from tests.conftest import image_bytes

FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]


def test_images_are_recognised_by_content_whatever_their_name(tmp_path):
    for n, image_format in enumerate(FORMATS):
        (tmp_path / f"{n}-{image_format}.bin").write_bytes(image_bytes(image_format, seed=n))
    (tmp_path / "png-named.txt").write_bytes(image_bytes("PNG"))
    (tmp_path / "notes.png").write_text("a text file named like an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    found = find_images([tmp_path])
    assert [image.name for image in found.images] == [
        *(f"{n}-{image_format}.bin" for n, image_format in enumerate(FORMATS)),
        "png-named.txt",
    ]
    assert sorted(path.name for path in found.not_images) == ["empty.jpg", "notes.png"]
    assert all(image.size == image.path.stat().st_size for image in found.images)


def test_folders_are_walked_in_name_order_and_named_relative_to_their_argument(tmp_path):
    photos = tmp_path / "photos"
    for name in ["b.png", "a/z.png", "a/b/c.png", "c.png"]:
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes(image_bytes("PNG"))
    (photos / "a" / "loop").symlink_to(photos)  # not followed: the walk ends
    lone = tmp_path / "lone.png"
    lone.write_bytes(image_bytes("PNG"))
    found = find_images([photos, lone])
    assert [image.name for image in found.images] == [
        "a/b/c.png",
        "a/z.png",
        "b.png",
        "c.png",
        "lone.png",
    ]
    assert found.images[0].path == photos / "a" / "b" / "c.png"


def test_a_fifo_is_skipped_unread(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert find_images([tmp_path]).not_images == (tmp_path / "pipe",)


def test_a_file_that_cannot_be_read_is_an_error_not_a_skip(tmp_path):
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(UnreadableFile) as raised:
        find_images([tmp_path])
    assert str(raised.value) == f"{tmp_path / 'gone.png'}: No such file or directory"
