"""The image store's exceptions: the API turns them into HTTP answers, the CLI into messages."""

from __future__ import annotations

from foundation.errors import DPIPError


class ImageStoreError(DPIPError):
    """Raised when the image store cannot write, read or delete an image."""


class StoreFull(ImageStoreError):
    """Raised when the store has no room left for an image (its disk or quota is full)."""


class ImageMissing(ImageStoreError):
    """Raised when an image the datastore records has no file in the store."""


class StoreUnreachable(ImageStoreError):
    """Raised when the store cannot be reached or fails for now; the same call may work later."""


class UploadTooLarge(ImageStoreError):
    """Raised when an object a client uploaded itself is over the size the API allows."""
