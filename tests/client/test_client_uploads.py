"""Upload items, batches, multipart bodies read back by Werkzeug's decoder (the API's), and
batches in flight answered in order (pure, no server)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from client import UploadSourceError
from client.uploads import MultipartForm, UploadPart, as_part, in_batches, send_in_order


def test_items_are_paths_bytes_or_named_bytes_or_paths(tmp_path: Path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"12345")
    assert as_part(photo) == UploadPart("photo.png", 5, photo)
    assert as_part(str(photo)) == UploadPart("photo.png", 5, photo)
    assert as_part(b"abc") == UploadPart(None, 3, b"abc")
    assert as_part(("a/b.png", bytearray(b"xy"))) == UploadPart("a/b.png", 2, b"xy")
    assert as_part(("renamed.png", photo)) == UploadPart("renamed.png", 5, photo)


@pytest.mark.parametrize("make", [lambda p: p / "missing.png", lambda p: p])
def test_a_path_that_is_no_file_is_refused_before_sending(tmp_path, make):
    with pytest.raises(UploadSourceError):
        as_part(make(tmp_path))


@pytest.mark.parametrize("item", [42, ("name.png",), (b"x", b"y"), None])
def test_anything_else_is_a_type_error(item):
    with pytest.raises(TypeError):
        as_part(item)


def test_batches_keep_the_order_and_cut_at_the_size():
    parts = [UploadPart(str(n), 1, b"x") for n in range(7)]
    batches = in_batches(parts, 3)
    assert [[part.filename for part in batch] for batch in batches] == [
        ["0", "1", "2"],
        ["3", "4", "5"],
        ["6"],
    ]
    with pytest.raises(ValueError):
        in_batches(parts, 0)


def _decoded(form: MultipartForm) -> list[tuple[str | None, bytes]]:
    """The form as the API's decoder reads it: (filename, bytes) per file part."""
    decoder = MultipartDecoder(form.boundary.encode())
    decoder.receive_data(b"".join(form))
    decoder.receive_data(None)
    files: list[tuple[str | None, bytes]] = []
    while not isinstance(event := decoder.next_event(), NeedData | Epilogue):
        if isinstance(event, File):
            assert event.name == "data"
            files.append((event.filename, b""))
        elif isinstance(event, Data) and files:
            files[-1] = (files[-1][0], files[-1][1] + event.data)
    return files


def test_a_form_reads_back_as_sent_names_included(tmp_path: Path):
    big = bytes(range(256)) * 3000  # 768 KB: three pieces of 256 KiB
    (tmp_path / "big.bin").write_bytes(big)
    parts = [
        as_part(("plain.png", b"one")),
        as_part(('quote " and back\\slash ü.png', tmp_path / "big.bin")),
        as_part(b"no name"),
        as_part(("line\r\nbreak\0.png", b"four")),
    ]
    form = MultipartForm(parts)
    assert form.content_type == f"multipart/form-data; boundary={form.boundary}"
    body = b"".join(form)
    assert len(form) == len(body)
    assert b"".join(form) == body, "each iteration starts over"
    assert _decoded(form) == [
        ("plain.png", b"one"),
        ('quote " and back\\slash ü.png', big),
        ("", b"no name"),  # the API keeps no filename for an empty one
        ("line\ufffd\ufffdbreak\ufffd.png", b"four"),
    ]


@pytest.mark.parametrize("change", [b"grown", None])
def test_a_file_that_changes_size_while_it_is_sent_raises(tmp_path: Path, change):
    path = tmp_path / "photo.png"
    path.write_bytes(b"12345")
    form = MultipartForm([as_part(path)])
    if change is None:
        path.write_bytes(b"123")
    else:
        path.write_bytes(b"12345" + change)
    with pytest.raises(UploadSourceError, match="changed size"):
        b"".join(form)


def test_batches_in_flight_are_answered_in_order_and_reported_as_they_come():
    """Batch 0 is held until batch 1 is answered: the result keeps the batches' order."""
    batch_one_done = threading.Event()

    def send(batch: list[int]) -> list[int]:
        if batch[0] == 0:
            assert batch_one_done.wait(5)
        return [n * 10 for n in batch]

    reported: list[list[int]] = []

    def on_batch(result: list[int]) -> None:
        reported.append(result)
        if result == [20, 30]:
            batch_one_done.set()

    with ThreadPoolExecutor(2) as executor:
        result = send_in_order([[0, 1], [2, 3]], send, executor, 2, on_batch)
    assert result == [0, 10, 20, 30]
    assert reported == [[20, 30], [0, 10]]


def test_a_failed_batch_stops_the_rest_and_is_raised_once_in_flight_ones_are_answered():
    started: list[int] = []
    second_failed = threading.Event()

    def send(batch: list[int]) -> list[int]:
        started.append(batch[0])
        if batch[0] == 1:
            second_failed.set()
            raise UploadSourceError("batch 1 cannot be read")
        assert second_failed.wait(5)  # batch 0 is in flight when batch 1 fails
        return batch

    reported: list[list[int]] = []
    with ThreadPoolExecutor(2) as executor, pytest.raises(UploadSourceError):
        send_in_order([[0], [1], [2], [3]], send, executor, 2, reported.append)
    assert sorted(started) == [0, 1]
    assert reported == [[0]]
