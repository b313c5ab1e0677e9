"""Extracting an archive: entries and manifest written whole, anything the API would not
write refused before a file is written (pure, no server)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from client import Manifest, ManifestEntry, UnexpectedAnswer
from client.archive import extract_archive

MANIFEST = {
    "workload_id": 7,
    "type": "filtered",
    "images": [
        {"image_id": 0, "filename": "a.png", "status": "done", "error": None},
        {"image_id": 1, "filename": None, "status": "failed", "error": "broken"},
    ],
}
GOOD_MANIFEST = json.dumps(MANIFEST).encode()


def _zip(entries: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    out.seek(0)
    return out


def test_entries_and_the_manifest_are_written_and_the_manifest_answered(tmp_path: Path):
    archive = _zip({"000000.png": b"result", "manifest.json": GOOD_MANIFEST})
    (tmp_path / "000000.png").write_bytes(b"an older download")
    manifest = extract_archive(archive, tmp_path)
    assert manifest == Manifest(
        7,
        "filtered",
        (ManifestEntry(0, "a.png", "done", None), ManifestEntry(1, None, "failed", "broken")),
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["000000.png", "manifest.json"]
    assert (tmp_path / "000000.png").read_bytes() == b"result"
    assert json.loads((tmp_path / "manifest.json").read_text()) == MANIFEST


@pytest.mark.parametrize(
    "entries",
    [
        {"../000000.png": b"x", "manifest.json": GOOD_MANIFEST},
        {"sub/000000.png": b"x", "manifest.json": GOOD_MANIFEST},
        {"/etc/000000.png": b"x", "manifest.json": GOOD_MANIFEST},
        {"000000.png": b"x", "manifest.json": GOOD_MANIFEST, "notes.txt": b"x"},
        {"000000.png": b"x"},  # no manifest
        {"000000.png": b"x", "manifest.json": b"not json"},
        {"000000.png": b"x", "manifest.json": b'{"workload_id": 1}'},
    ],
)
def test_an_archive_the_api_would_not_write_is_refused_and_nothing_written(tmp_path, entries):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnexpectedAnswer):
        extract_archive(_zip(entries), out)
    assert list(out.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_body_that_is_not_a_zip_is_unexpected(tmp_path: Path):
    with pytest.raises(UnexpectedAnswer):
        extract_archive(io.BytesIO(b"<html>not a zip</html>"), tmp_path)
