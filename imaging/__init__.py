"""Image filters and upload checks, shared by the API (validation) and workers (filtering)."""

from imaging.filters import FILTERS, FilterError, apply_filter, validate_filter_params
from imaging.inspection import (
    CostLimits,
    ImageInfo,
    ImageRejected,
    ImageTooComplex,
    ImageTooLarge,
    NotAnImage,
    extension_of,
    inspect_image,
)

__all__ = [
    "FILTERS",
    "CostLimits",
    "FilterError",
    "ImageInfo",
    "ImageRejected",
    "ImageTooComplex",
    "ImageTooLarge",
    "NotAnImage",
    "apply_filter",
    "extension_of",
    "inspect_image",
    "validate_filter_params",
]
