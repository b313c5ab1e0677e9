"""A batch's images as its readers list them, its limits, and how its refusals read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from api.errors import APIError
from foundation import defaults


@dataclass(frozen=True)
class BatchLimits:
    """What one batch may hold."""

    max_images: int
    max_bytes: int  # the body, and the images' bytes together
    max_image_bytes: int  # each image, as a single upload
    max_filename_chars: int

    @property
    def max_entries(self) -> int:
        """Zip or tar entries, directories included."""
        return self.max_images * defaults.BATCH_ENTRIES_PER_IMAGE

    @property
    def max_archive_metadata_bytes(self) -> int:
        return self.max_entries * defaults.ARCHIVE_METADATA_BYTES_PER_ENTRY


def member_label(index: int, filename: str | None) -> str:
    """How answers name a member: `image 3 ('cat.png')`, or `image 3` without a name."""
    return f"image {index} ({filename!r})" if filename else f"image {index}"


@dataclass(frozen=True)
class Member:
    """One image of a batch: its place in the order sent, its name, and how to read it."""

    index: int
    filename: str | None
    read: Callable[[], bytes]  # its bytes, at most the single-upload limit

    @property
    def label(self) -> str:
        return member_label(self.index, self.filename)


def bad_batch(message: str) -> APIError:
    return APIError(400, "invalid_batch", message)


def too_many_images(limits: BatchLimits) -> APIError:
    return APIError(
        413,
        "too_many_images",
        f"a batch may hold at most {limits.max_images} images (a zip or tar at most"
        f" {limits.max_entries} entries, directories included); send the rest in another",
    )


def too_many_bytes(limits: BatchLimits) -> APIError:
    return APIError(
        413,
        "payload_too_large",
        f"a batch may carry at most {limits.max_bytes} bytes, in its body and in its images"
        " together; send the rest in another",
    )


def member_error(
    index: int, filename: str | None, problem: str, code: str = "invalid_batch"
) -> APIError:
    """A refusal naming the member: `image 3 ('cat.png') is a symbolic link, ...`."""
    return APIError(400, code, f"{member_label(index, filename)} {problem}")
