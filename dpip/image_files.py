"""The images under the paths a user names: files, and directories walked recursively.

An image is recognised by its first bytes, the signatures of the formats the API accepts
(JPEG, PNG, GIF, WEBP, BMP, TIFF), whatever its name; other files are counted and left.
Each image is named by its path relative to the argument it came from (`day1/img_001.jpg`
under `photos/`; a file argument by its own name), the name it is uploaded under.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import DPIPError
from imaging.structure import format_by_signature

SIGNATURE_BYTES = 12  # enough for every accepted format's signature (RIFF....WEBP)


class UnreadableFile(DPIPError):
    """Raised when a file under the paths named cannot be read."""


class NoImagesFound(DPIPError):
    """Raised when the paths named hold no image at all (and there must be one)."""


@dataclass(frozen=True)
class LocalImage:
    """An image file to upload: where it is, its name relative to its argument, its size."""

    path: Path
    name: str
    size: int


@dataclass(frozen=True)
class FoundFiles:
    """The images found, in upload order, and the files that are not images."""

    images: tuple[LocalImage, ...]
    not_images: tuple[Path, ...]


def _unreadable(error: OSError) -> None:
    raise UnreadableFile(f"{error.filename}: {error.strerror or error}") from error


def _files_under(argument: Path) -> list[tuple[Path, str]]:
    """Every file at or under `argument` with its name relative to it, sorted by name.
    Links to directories are not followed (a loop would never end)."""
    if not argument.is_dir():
        return [(argument, argument.name)]
    files = [
        (Path(folder, filename), Path(folder, filename).relative_to(argument).as_posix())
        for folder, _, filenames in os.walk(argument, onerror=_unreadable)
        for filename in filenames
    ]
    return sorted(files, key=lambda file: file[1])


def _image_size(path: Path) -> int | None:
    """The file's size if it is a regular file starting with an accepted signature."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read
            return None
        with open(path, "rb") as file:
            head = file.read(SIGNATURE_BYTES)
    except OSError as e:
        raise UnreadableFile(f"{path}: {e.strerror or e}") from e
    return info.st_size if format_by_signature(head) else None


def find_images(arguments: Sequence[Path]) -> FoundFiles:
    """The images at or under each argument, the arguments in order."""
    images: list[LocalImage] = []
    not_images: list[Path] = []
    for argument in arguments:
        for path, name in _files_under(argument):
            size = _image_size(path)
            if size is None:
                not_images.append(path)
            else:
                images.append(LocalImage(path, name, size))
    return FoundFiles(tuple(images), tuple(not_images))
