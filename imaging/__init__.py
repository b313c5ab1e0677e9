"""Image filters and upload checks, shared by the API (validation) and workers (filtering)."""

from imaging.filters import FILTERS, FilterError, apply_filter, validate_filter_params
from imaging.inspection import ImageInfo, ImageRejected, ImageTooLarge, NotAnImage, inspect_image

__all__ = [
    "FILTERS",
    "FilterError",
    "ImageInfo",
    "ImageRejected",
    "ImageTooLarge",
    "NotAnImage",
    "apply_filter",
    "inspect_image",
    "validate_filter_params",
]
