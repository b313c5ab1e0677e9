"""Decide whether uploaded bytes are an image DPIP accepts, without trusting the client."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from imaging.rejections import ImageRejected, ImageTooComplex, ImageTooLarge, NotAnImage
from imaging.structure import CostLimits, check_structure

__all__ = [
    "ALLOWED_FORMATS",
    "CostLimits",
    "ImageInfo",
    "ImageRejected",
    "ImageTooComplex",
    "ImageTooLarge",
    "NotAnImage",
    "extension_of",
    "inspect_image",
]

# Accepted formats: Pillow's name → (file extension, MIME type).
ALLOWED_FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "GIF": ("gif", "image/gif"),
}


@dataclass(frozen=True)
class ImageInfo:
    """What the API stores about an accepted image."""

    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return extension_of(self.format)

    @property
    def mime_type(self) -> str:
        return ALLOWED_FORMATS[self.format][1]


def extension_of(image_format: str) -> str:
    """The file extension of an accepted format (Pillow's name): `PNG` → `png`."""
    return ALLOWED_FORMATS[image_format][0]


_DEFAULT_COST_LIMITS = CostLimits()


def inspect_image(
    data: bytes, max_pixels: int, limits: CostLimits = _DEFAULT_COST_LIMITS
) -> ImageInfo:
    """Return the format and size of `data`, or raise an ImageRejected subclass.

    No pixel is decoded: the container is walked first (it must be complete, and cost no
    more to read than `limits` allow), then Pillow reads the headers it has counted.
    """
    if not data:
        raise NotAnImage("the file is empty")
    walked_format = check_structure(data, limits)
    info = _read_headers(data, max_pixels)
    if info.format != walked_format:
        raise NotAnImage(f"the file does not start with the usual {info.format} signature")
    return info


def _read_headers(data: bytes, max_pixels: int) -> ImageInfo:
    """Identify the format and size with Pillow; verify() checks a PNG's chunk CRCs."""
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
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"the image is over the pixel limit: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, ImageRejected):
            raise
        raise NotAnImage(f"the file is not a readable image: {e}") from e
    return info
