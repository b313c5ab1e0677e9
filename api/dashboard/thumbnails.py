"""Thumbnails of results: small JPEGs made on the first request, kept beside the result in
the image store (`<number>.thumb.jpg`, written to a temp file and renamed), served after."""

from __future__ import annotations

import io
from pathlib import Path

from flask import current_app

from api.errors import not_found
from api.images import image_store
from datastore import Row
from foundation import defaults
from imagestore import ImageMissing, ImageName, SizedStream
from imaging import ImageRejected, extension_of
from imaging.thumbnails import make_thumbnail

THUMB_KIND = "thumb"
THUMB_EXTENSION = "jpg"


def thumbnail_file(workload: Row, image: Row) -> Path | SizedStream:
    """The thumbnail of `image`'s result, made now if it is the first request for it.

    Two requests at once may both make it; the later rename wins, and both files are equal.
    """
    store = image_store()
    name = ImageName(image["number"], THUMB_KIND, THUMB_EXTENSION)
    try:
        return store.open(workload["dir_name"], name)
    except ImageMissing:
        pass
    filtered = ImageName(image["number"], "filtered", extension_of(image["format"]))
    try:
        result = store.open(workload["dir_name"], filtered)
        data = make_thumbnail(
            result,
            current_app.config["DPIP"].thumbnail_side_px,
            defaults.THUMBNAIL_JPEG_QUALITY,
        )
    except (ImageMissing, ImageRejected) as e:
        raise not_found(f"image {image['number']} has no readable result: {e}") from e
    with store.put(workload["dir_name"], io.BytesIO(data)) as staged:
        staged.commit(name)
    return store.open(workload["dir_name"], name)
