"""Decide whether uploaded bytes are an image DPIP accepts, without trusting the client."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from dpip.errors import DPIPError

# Accepted formats: Pillow's name → (file extension, MIME type).
ALLOWED_FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "GIF": ("gif", "image/gif"),
}


class ImageRejected(DPIPError, ValueError):
    """Raised when uploaded bytes cannot be accepted as an image."""


class NotAnImage(ImageRejected):
    """Raised when the bytes are not a readable image of an allowed format."""


class ImageTooLarge(ImageRejected):
    """Raised when the image has more pixels than allowed (a decompression bomb)."""


@dataclass(frozen=True)
class ImageInfo:
    """What the API stores about an accepted image."""

    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return ALLOWED_FORMATS[self.format][0]

    @property
    def mime_type(self) -> str:
        return ALLOWED_FORMATS[self.format][1]


# verify() checks every chunk of a PNG; for these formats only decoding finds a cut file.
_DECODE_TO_CHECK = {"GIF", "TIFF", "BMP", "WEBP"}
_JPEG_START_OF_SCAN, _JPEG_END_OF_IMAGE = b"\xff\xda", b"\xff\xd9"


def _check_complete(data: bytes, image_format: str) -> None:
    """Refuse a truncated file, cheaply where the format allows it.

    A JPEG's last scan must be followed by its end marker (markers cannot occur inside
    entropy-coded data), which costs a byte search instead of a full decode. The search
    starts at the end: a complete file ends with its end marker, after which no scan may
    start, so only the bytes after the last end marker are searched for one.
    """
    if image_format == "JPEG":
        end = data.rfind(_JPEG_END_OF_IMAGE)
        if data.find(_JPEG_START_OF_SCAN, end + 1) != -1:
            raise NotAnImage("the JPEG is truncated: its last scan has no end marker")
    elif image_format in _DECODE_TO_CHECK:
        with Image.open(io.BytesIO(data)) as image:
            image.load()


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Return the format and size of `data`, or raise an ImageRejected subclass."""
    if not data:
        raise NotAnImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                info = ImageInfo(image.format or "", image.width, image.height)
                if info.format not in ALLOWED_FORMATS:
                    raise NotAnImage(
                        f"format {info.format or 'unknown'} is not accepted; "
                        f"send one of: {', '.join(sorted(ALLOWED_FORMATS))}"
                    )
                if info.width * info.height > max_pixels:
                    raise ImageTooLarge(
                        f"{info.width}x{info.height} is over the limit of {max_pixels} pixels"
                    )
                image.verify()
            _check_complete(data, info.format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"the image is over the pixel limit: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, ImageRejected):
            raise
        raise NotAnImage(f"the file is not a readable image: {e}") from e
    return info
