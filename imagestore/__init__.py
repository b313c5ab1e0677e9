"""The image store: image files per workload, written whole, behind an engine interface."""

from imagestore.errors import ImageMissing, ImageStoreError, StoreFull
from imagestore.local import LocalImageStore
from imagestore.store import ByteStream, ImageName, ImageStore, StagedImage

__all__ = [
    "ByteStream",
    "ImageMissing",
    "ImageName",
    "ImageStore",
    "ImageStoreError",
    "LocalImageStore",
    "StagedImage",
    "StoreFull",
]
