"""The streamed zip: read back by zipfile, entries in order, manifest last, bounded pieces."""

from __future__ import annotations

import io
import json
import zipfile

from api.zip_stream import ZipEntry, stream_zip

CHUNK = 64 * 1024


def _files(tmp_path, sizes: list[int]) -> list[bytes]:
    contents = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    for n, data in enumerate(contents):
        (tmp_path / f"{n}.bin").write_bytes(data)
    return contents


def test_entries_then_the_manifest_are_read_back_whole(tmp_path):
    contents = _files(tmp_path, [0, 10, 300_000, 5])
    entries = [
        ZipEntry(f"{n:06d}.png", tmp_path / f"{n}.bin", compress=n == 3)
        for n in range(len(contents))
    ]
    items = [{"image_id": n, "filename": f"é{n}.png", "error": None} for n in range(6)]
    pieces = list(stream_zip(entries, "manifest.json", {"workload_id": 7}, items, CHUNK))

    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.testzip() is None  # every CRC checks out
    names = archive.namelist()
    assert names == [f"{n:06d}.png" for n in range(4)] + ["manifest.json"]
    assert [archive.read(name) for name in names[:-1]] == contents
    infos = archive.infolist()
    assert [info.compress_type for info in infos[:4]] == [0, 0, 0, zipfile.ZIP_DEFLATED]
    assert all(info.flag_bits & 0x08 for info in infos)  # sizes after the data: never sought
    assert json.loads(archive.read("manifest.json")) == {"workload_id": 7, "images": items}
    # Pieces are about a chunk each: nothing is gathered whole.
    assert max(map(len, pieces)) < CHUNK * 2
    assert len(pieces) > 300_000 // CHUNK


def test_files_are_opened_only_as_the_zip_reaches_them(tmp_path):
    _files(tmp_path, [CHUNK * 3, CHUNK * 3])
    opened = []

    def entries():
        for n in range(2):
            opened.append(n)
            yield ZipEntry(f"{n}.png", tmp_path / f"{n}.bin", compress=False)

    pieces = stream_zip(entries(), "manifest.json", {}, iter([]), CHUNK)
    next(pieces)
    assert opened == [0]
    rest = b"".join(pieces)
    assert opened == [0, 1]
    assert rest  # the second file and the central directory came after


def test_an_empty_archive_has_only_its_manifest():
    data = b"".join(stream_zip([], "manifest.json", {"type": "filtered"}, [], CHUNK))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist() == ["manifest.json"]
    assert json.loads(archive.read("manifest.json")) == {"type": "filtered", "images": []}
