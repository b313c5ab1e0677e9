"""What a resumed upload sends: the local images the workload does not hold yet.

An image in the workload stands for a local one when it has the local image's name, as the
API keeps it, and its size in bytes. The API keeps a filename as text: its last
`MAX_FILENAME_CHARS` characters (the API's default; user-guide.md, `POST /images`) with
control and format characters replaced by U+FFFD, so the local name is compared in that
form. Each image in the workload stands for one local image only: two local files of the
same name and size (from two arguments) need two.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from client import ImageInfo
from dpip.image_files import LocalImage
from foundation.defaults import MAX_FILENAME_CHARS


@dataclass(frozen=True)
class UploadPlan:
    """The local images to send, and those the workload holds already."""

    to_send: tuple[LocalImage, ...]
    already_uploaded: tuple[LocalImage, ...]


def kept_filename(name: str, max_chars: int = MAX_FILENAME_CHARS) -> str:
    """The filename the API keeps for an image sent as `name`."""
    return "".join(
        "\ufffd" if unicodedata.category(ch).startswith("C") else ch for ch in name[-max_chars:]
    )


def plan_upload(local: Sequence[LocalImage], stored: Iterable[ImageInfo]) -> UploadPlan:
    """Split `local` (in order) into what to send and what `stored` already holds."""
    held = Counter((image.filename, image.size) for image in stored if image.filename)
    to_send: list[LocalImage] = []
    already: list[LocalImage] = []
    for image in local:
        key = (kept_filename(image.name), image.size)
        if held[key] > 0:
            held[key] -= 1
            already.append(image)
        else:
            to_send.append(image)
    return UploadPlan(tuple(to_send), tuple(already))
