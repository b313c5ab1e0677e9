"""Where downloaded images go in the output directory: by number, or by original name.

The archive's entries are numbered (`000042.png`). With original names each entry takes
the filename its image was uploaded under (`holiday/day1/img_001.jpg`, its folders made),
unless that name would leave the directory (absolute, `..`, or through a link), is
`manifest.json`, or is another image's: then the entry keeps its number, and the refusal
is reported, never silent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from client import Manifest
from foundation.errors import DPIPError

MANIFEST_NAME = "manifest.json"


class NamesClash(DPIPError):
    """Raised when an entry can keep neither its original name nor its number's."""


@dataclass(frozen=True)
class PlacedFile:
    """An image written: its number, the filename it was uploaded under, its path in DIR."""

    image_id: int
    filename: str | None
    path: str


@dataclass(frozen=True)
class KeptNumbered:
    """An image written under its number, although original names were asked for."""

    image_id: int
    filename: str | None
    reason: str


@dataclass(frozen=True)
class Placement:
    """The files written, in number order, and the images that kept their number."""

    files: tuple[PlacedFile, ...]
    kept_numbered: tuple[KeptNumbered, ...]


def _refusal(filename: str | None, out_dir: Path) -> str | None:
    """Why `filename` cannot be an entry's name in `out_dir` (None: it can)."""
    if not filename:
        return "it was uploaded without a filename"
    path = PurePosixPath(filename)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return "its filename would be outside the output directory"
    if path.as_posix() == MANIFEST_NAME:
        return f"its filename is the manifest's, {MANIFEST_NAME}"
    if not (out_dir / path).resolve().is_relative_to(out_dir.resolve()):
        return "its filename leads out of the output directory through a link"
    return None


class _Names:
    """Paths given out in a directory so far: files, and the folders above them."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.folders: set[str] = set()

    def free(self, name: str) -> bool:
        parents = {parent.as_posix() for parent in PurePosixPath(name).parents}
        return name not in self.files | self.folders and not parents & self.files

    def take(self, name: str) -> None:
        self.files.add(name)
        self.folders.update(parent.as_posix() for parent in PurePosixPath(name).parents)


def plan_names(
    manifest: Manifest, entries: Mapping[int, str], out_dir: Path, original: bool
) -> tuple[dict[int, str], list[KeptNumbered]]:
    """The path in `out_dir` of each entry (by image number), and the images that keep
    their number although `original` names were asked for."""
    if not original:
        return dict(entries), []
    filenames = {entry.image_id: entry.filename for entry in manifest.images}
    refusals = {number: _refusal(filenames.get(number), out_dir) for number in entries}
    kept = {
        number: KeptNumbered(number, filenames.get(number), reason)
        for number, reason in refusals.items()
        if reason
    }
    targets = {number: entries[number] for number in kept}
    names = _Names()
    for name in [MANIFEST_NAME, *targets.values()]:
        names.take(name)
    for number in sorted(number for number, reason in refusals.items() if not reason):
        name = PurePosixPath(filenames[number] or "").as_posix()
        if not names.free(name):
            name = entries[number]
            if not names.free(name):
                raise NamesClash(f"image {number} can keep neither its filename nor {name}")
            kept[number] = KeptNumbered(
                number, filenames[number], "another image's filename or folder is the same"
            )
        targets[number] = name
        names.take(name)
    return targets, [kept[number] for number in sorted(kept)]


def place_entries(staging: Path, out_dir: Path, manifest: Manifest, original: bool) -> Placement:
    """Move the archive's entries from `staging` (where it was unpacked) into `out_dir`
    under their names, and `manifest.json` last."""
    entries = {
        int(path.name.split(".")[0]): path.name
        for path in staging.iterdir()
        if path.name != MANIFEST_NAME
    }
    targets, kept = plan_names(manifest, entries, out_dir, original)
    filenames = {entry.image_id: entry.filename for entry in manifest.images}
    files = []
    for number in sorted(targets):
        target = out_dir / targets[number]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / entries[number], target)
        files.append(PlacedFile(number, filenames.get(number), targets[number]))
    os.replace(staging / MANIFEST_NAME, out_dir / MANIFEST_NAME)
    return Placement(tuple(files), tuple(kept))
