"""Why the upload check refuses bytes: one small hierarchy, shared by its modules."""

from __future__ import annotations

from typing import ClassVar

from foundation.errors import DPIPError


class ImageRejected(DPIPError, ValueError):
    """Raised when uploaded bytes cannot be accepted as an image."""

    code: ClassVar[str] = "not_an_image"  # the API's error code for it, wherever it answers


class NotAnImage(ImageRejected):
    """Raised when the bytes are not a readable image of an allowed format."""


class ImageTooLarge(ImageRejected):
    """Raised when the image has more pixels than allowed (a decompression bomb)."""

    code: ClassVar[str] = "image_too_large"


class ImageTooComplex(ImageRejected):
    """Raised when reading the image would cost far more than its size or pixels suggest."""

    code: ClassVar[str] = "image_too_complex"
