"""The stress test's batches and its archive check: pure parts, on archives built here."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest

from stress.archive import Expected, read_archive
from stress.batches import archive_body, deal_batches

EXPECTED = Expected("png", {1: "a.png", 2: "b.png", 3: None, 4: "d.png"}, frozenset({4}))
MANIFEST = [
    {"image_id": 1, "filename": "a.png", "status": "done", "error": None},
    {"image_id": 2, "filename": "b.png", "status": "done", "error": None},
    {"image_id": 3, "filename": "", "status": "done", "error": None},
    {"image_id": 4, "filename": "d.png", "status": "failed", "error": "not decodable"},
]
ENTRIES = {"000001.png": b"one", "000002.png": b"two", "000003.png": b"three"}


def build_zip(entries: dict[str, bytes], manifest: object, manifest_first: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        members = [*entries.items()]
        manifest_member = ("manifest.json", json.dumps({"images": manifest}).encode())
        members = [manifest_member, *members] if manifest_first else [*members, manifest_member]
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def test_a_complete_archive_gives_every_done_image_and_no_problem():
    contents = read_archive(io.BytesIO(build_zip(ENTRIES, MANIFEST)), EXPECTED)
    assert contents.problems == {}
    assert contents.results == {1: b"one", 2: b"two", 3: b"three"}


def _without(entries: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {key: value for key, value in entries.items() if key != name}


def _changed(number: int, **fields: object) -> list[dict]:
    return [{**item, **fields} if item["image_id"] == number else item for item in MANIFEST]


NOT_LISTED = "manifest lists an image not uploaded, or twice"
WRONG_MANIFEST_STATUS = "manifest status or error differs from the workload's"
UNEXPECTED_ENTRY = "entry of an image not done, or twice"
BAD_NAME = "entry name is not NNNNNN.<extension>"
BROKEN = {
    "missing entry": (_without(ENTRIES, "000002.png"), MANIFEST, "done image without an entry"),
    "entry of a failed image": ({**ENTRIES, "000004.png": b"x"}, MANIFEST, UNEXPECTED_ENTRY),
    "entry of an unknown image": ({**ENTRIES, "000009.png": b"x"}, MANIFEST, UNEXPECTED_ENTRY),
    "unpadded name": ({**ENTRIES, "2.png": b"x"}, MANIFEST, BAD_NAME),
    "wrong extension": ({**ENTRIES, "000003.jpg": b"x"}, MANIFEST, BAD_NAME),
    "manifest misses one": (ENTRIES, MANIFEST[:3], "manifest misses an uploaded image"),
    "manifest lists one twice": (ENTRIES, [*MANIFEST, MANIFEST[0]], NOT_LISTED),
    "manifest lists one never sent": (ENTRIES, [*MANIFEST, {"image_id": 7}], NOT_LISTED),
    "other filename": (
        ENTRIES,
        _changed(2, filename="other.png"),
        "manifest filename differs from the upload's",
    ),
    "failed shown done": (ENTRIES, _changed(4, status="done", error=None), WRONG_MANIFEST_STATUS),
    "failure without error": (ENTRIES, _changed(4, error=None), WRONG_MANIFEST_STATUS),
}


@pytest.mark.parametrize(("entries", "manifest", "problem"), BROKEN.values(), ids=BROKEN)
def test_each_way_an_archive_can_differ_is_a_problem(entries, manifest, problem):
    contents = read_archive(io.BytesIO(build_zip(entries, manifest)), EXPECTED)
    assert contents.problems == {problem: 1}


def test_a_manifest_that_is_not_the_last_entry_is_a_problem():
    data = build_zip(ENTRIES, MANIFEST, manifest_first=True)
    assert read_archive(io.BytesIO(data), EXPECTED).problems == {
        "manifest.json is not the last entry": 1
    }


@pytest.mark.parametrize(
    "data", [b"", b"PK\x03\x04 cut short", build_zip(ENTRIES, MANIFEST)[:-40]], ids=str
)
def test_an_unreadable_or_cut_archive_is_a_problem(data):
    assert read_archive(io.BytesIO(data), EXPECTED).problems == {
        "unreadable archive or manifest": 1
    }


def test_batches_keep_each_image_in_its_workload_and_take_turns():
    assert deal_batches(7, 1, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert deal_batches(10, 2, 2) == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]


IMAGES = [("a.png", b"first"), ("b.png", b"second\x00bytes")]


def test_a_zip_batch_holds_each_image_under_its_filename():
    with zipfile.ZipFile(io.BytesIO(archive_body(IMAGES, "zip"))) as archive:
        assert [(name, archive.read(name)) for name in archive.namelist()] == IMAGES


def test_a_tar_batch_holds_each_image_under_its_filename():
    with tarfile.open(fileobj=io.BytesIO(archive_body(IMAGES, "tar"))) as archive:
        members = [(m.name, archive.extractfile(m).read()) for m in archive.getmembers()]
    assert members == IMAGES


def test_a_form_is_no_archive():
    with pytest.raises(ValueError):
        archive_body(IMAGES, "form")
