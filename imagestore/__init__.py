"""The image store: image files per workload, written whole, behind an engine interface."""

from __future__ import annotations

from pathlib import Path

from imagestore.errors import (
    ImageMissing,
    ImageStoreError,
    StoreFull,
    StoreUnreachable,
    UploadTooLarge,
)
from imagestore.local import LocalImageStore
from imagestore.store import (
    ByteStream,
    DirectTransfers,
    ImageName,
    ImageStore,
    SizedStream,
    StagedImage,
    Staging,
)

__all__ = [
    "ByteStream",
    "DirectTransfers",
    "ImageMissing",
    "ImageName",
    "ImageStore",
    "ImageStoreError",
    "LocalImageStore",
    "SizedStream",
    "StagedImage",
    "Staging",
    "StoreFull",
    "StoreUnreachable",
    "UploadTooLarge",
    "open_image_store",
]

S3_PREFIX = "s3://"


def open_image_store(location: str, images_dir: Path) -> ImageStore:
    """The store `location` names: `s3://bucket/prefix` (its request scratch files then go
    to `images_dir`), or, when empty, the local directory `images_dir`.

    boto3 is imported only for S3: it costs a local store's start about 0.2 s.
    """
    if location.startswith(S3_PREFIX):
        from imagestore.s3 import S3ImageStore

        return S3ImageStore.from_url(location, images_dir)
    if location:
        raise ValueError(f"DPIP_IMAGE_STORE is s3://bucket/prefix or empty, not {location!r}")
    return LocalImageStore(images_dir)
