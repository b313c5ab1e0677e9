"""Downloaded entries under their original names: only inside the output directory, never
over the manifest or each other; the refused keep their number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client import Manifest, ManifestEntry
from dpip.download_names import NamesClash, place_entries, plan_names


def manifest_of(*filenames: str | None) -> Manifest:
    entries = tuple(ManifestEntry(n, name, "done", None) for n, name in enumerate(filenames))
    return Manifest(1, "filtered", entries)


def numbered(count: int) -> dict[int, str]:
    return {n: f"{n:06d}.png" for n in range(count)}


def test_numbers_stay_numbers_without_original_names(tmp_path):
    assert plan_names(manifest_of("a.png"), numbered(1), tmp_path, original=False) == (
        numbered(1),
        [],
    )


def test_each_image_takes_its_relative_path(tmp_path):
    targets, kept = plan_names(
        manifest_of("holiday/day1/img_001.jpg", "./cover.png"), numbered(2), tmp_path, True
    )
    assert targets == {0: "holiday/day1/img_001.jpg", 1: "cover.png"}
    assert kept == []


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        (None, "without a filename"),
        ("", "without a filename"),
        ("../escape.png", "outside the output directory"),
        ("a/../../escape.png", "outside the output directory"),
        ("/etc/escape.png", "outside the output directory"),
        (".", "outside the output directory"),
        ("manifest.json", "the manifest's"),
        ("link/escape.png", "through a link"),
    ],
)
def test_a_name_that_would_leave_the_directory_or_hit_the_manifest_keeps_its_number(
    filename, reason, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    targets, [kept] = plan_names(manifest_of(filename), numbered(1), out, True)
    assert targets == {0: "000000.png"}
    assert (kept.image_id, kept.filename) == (0, filename)
    assert reason in kept.reason


def test_a_taken_name_or_folder_keeps_its_number(tmp_path):
    names = manifest_of("x.png", "x.png", "a", "a/b.png", "000004.png")
    targets, kept = plan_names(names, numbered(5), tmp_path, True)
    assert targets == {0: "x.png", 1: "000001.png", 2: "a", 3: "000003.png", 4: "000004.png"}
    assert [image.image_id for image in kept] == [1, 3]


def test_an_image_that_can_keep_neither_name_is_an_error(tmp_path):
    with pytest.raises(NamesClash):
        plan_names(manifest_of("000001.png", "000001.png"), numbered(2), tmp_path, True)


def test_entries_move_from_the_staging_folder_into_place(tmp_path):
    staging, out = tmp_path / "out" / ".staging", tmp_path / "out"
    staging.mkdir(parents=True)
    for n in range(3):
        (staging / f"{n:06d}.png").write_bytes(b"image %d" % n)
    (staging / "manifest.json").write_text(json.dumps({"workload_id": 1}))
    placement = place_entries(staging, out, manifest_of("a/b.png", None, "c.png"), True)
    assert [(file.image_id, file.path) for file in placement.files] == [
        (0, "a/b.png"),
        (1, "000001.png"),
        (2, "c.png"),
    ]
    assert [image.image_id for image in placement.kept_numbered] == [1]
    assert (out / "a" / "b.png").read_bytes() == b"image 0"
    assert (out / "manifest.json").exists() and list(staging.iterdir()) == []
    assert sorted(path.name for path in out.iterdir()) == sorted(
        [".staging", "a", "000001.png", "c.png", "manifest.json"]
    )


def test_an_archive_without_images_moves_only_its_manifest(tmp_path: Path):
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "manifest.json").write_text("{}")
    assert place_entries(staging, tmp_path, manifest_of(), True).files == ()
    assert (tmp_path / "manifest.json").read_text() == "{}"
