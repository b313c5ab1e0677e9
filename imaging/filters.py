"""The filter registry: a new filter is one decorated function."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFilter

from foundation import defaults
from foundation.errors import DPIPError

# Extra encoder options per format; others use Pillow's defaults.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 90}}


class FilterError(DPIPError, ValueError):
    """Raised when a filter name or its parameters are not valid."""


@dataclass(frozen=True)
class Filter:
    """A named image operation and the validator of its parameters."""

    name: str
    apply: Callable[[Image.Image, Mapping[str, Any]], Image.Image]
    parse_params: Callable[[Mapping[str, Any]], dict[str, Any]]


FILTERS: dict[str, Filter] = {}


def _no_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def register(
    name: str, parse_params: Callable[[Mapping[str, Any]], dict[str, Any]] = _no_params
) -> Callable:
    """Add the decorated function to the registry under `name`."""

    def decorator(apply: Callable[[Image.Image, Mapping[str, Any]], Image.Image]) -> Callable:
        FILTERS[name] = Filter(name, apply, parse_params)
        return apply

    return decorator


def _blur_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    value = raw.get("radius")
    if value is None or value == "":
        return {"radius": defaults.DEFAULT_BLUR_RADIUS}
    if isinstance(value, bool):
        raise FilterError("radius must be a number")
    try:
        radius = float(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise FilterError("radius must be a number") from e
    if not math.isfinite(radius) or not 0 <= radius <= defaults.MAX_BLUR_RADIUS:
        raise FilterError(f"radius must be between 0 and {defaults.MAX_BLUR_RADIUS:g}")
    return {"radius": radius}


@register("grayscale")
def grayscale(image: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Convert to 8-bit luminance, exactly as Pillow's convert("L")."""
    return image.convert("L")


@register("blur", _blur_params)
def blur(image: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Gaussian blur; modes Pillow cannot filter (palette, 1-bit, 16/32-bit) are converted."""
    if image.mode in ("P", "1"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode.startswith("I;16"):  # 16-bit grey: scale to 8 bits rather than clip
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    elif image.mode in ("I", "F"):
        image = image.convert("L")
    return image.filter(ImageFilter.GaussianBlur(params["radius"]))


def validate_filter_params(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the normalized parameters of filter `name`, or raise FilterError."""
    spec = FILTERS.get(name)
    if spec is None:
        raise FilterError(f"unknown filter {name!r}; choose one of: {', '.join(sorted(FILTERS))}")
    return spec.parse_params(raw)


def apply_filter(name: str, params: Mapping[str, Any], data: bytes) -> bytes:
    """Decode `data`, apply the filter and encode the result in the original's format."""
    with Image.open(io.BytesIO(data)) as image:
        image_format = image.format
        result = FILTERS[name].apply(image, params)
        out = io.BytesIO()
        result.save(out, format=image_format, **SAVE_OPTIONS.get(image_format, {}))
    return out.getvalue()
