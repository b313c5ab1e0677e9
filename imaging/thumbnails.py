"""Small JPEG previews of results, for the dashboard's grid of thumbnails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from imaging.rejections import NotAnImage


def make_thumbnail(source: Path | BinaryIO, longest_side_px: int, quality: int) -> bytes:
    """Return `source` shrunk to fit `longest_side_px` (never enlarged), as JPEG bytes.

    The results were checked when their originals were uploaded, so no size check here.
    """
    try:
        with Image.open(source) as image:
            image.thumbnail((longest_side_px, longest_side_px))
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise NotAnImage(f"cannot read the result for a thumbnail: {e}") from e
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality)
    return out.getvalue()
