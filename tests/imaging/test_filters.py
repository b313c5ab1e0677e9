"""Filters: exact Pillow results, the original's format kept, parameters validated."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image, ImageFilter

from foundation import defaults
from imaging.filters import FILTERS, FilterError, apply_filter, validate_filter_params

FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"]


def photo(size: tuple[int, int] = (24, 16), mode: str = "RGB") -> Image.Image:
    """A small deterministic image with edges, so blurs and conversions change pixels."""
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 37) % 256, (y * 53) % 256, ((x + y) * 29 + (x * y) % 7 * 30) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(size))
        return image
    return image.convert(mode)


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_registry_holds_grayscale_and_blur() -> None:
    assert set(FILTERS) == {"grayscale", "blur"}
    assert all(spec.name == name for name, spec in FILTERS.items())


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1"])
def test_grayscale_equals_pillow_convert_l(mode: str) -> None:
    original = photo(mode=mode)
    result = decoded(apply_filter("grayscale", {}, encoded(original)))
    expected = decoded(encoded(original)).convert("L")
    assert result.format == "PNG"
    assert result.mode == "L"
    assert result.size == original.size
    assert result.tobytes() == expected.tobytes()


def test_grayscale_changes_a_colour_image() -> None:
    original = photo()
    result = decoded(apply_filter("grayscale", {}, encoded(original)))
    assert result.convert("RGB").tobytes() != original.tobytes()


@pytest.mark.parametrize("radius", [0.0, 0.5, 2.0, 5.5, 30.0])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_blur_equals_pillow_gaussian_blur(mode: str, radius: float) -> None:
    original = photo(mode=mode)
    result = decoded(apply_filter("blur", {"radius": radius}, encoded(original)))
    expected = original.filter(ImageFilter.GaussianBlur(radius))
    assert result.format == "PNG"
    assert result.mode == mode
    assert result.tobytes() == expected.tobytes()


def test_blur_changes_pixels() -> None:
    original = photo()
    result = decoded(apply_filter("blur", {"radius": 2.0}, encoded(original)))
    assert result.tobytes() != original.tobytes()


@pytest.mark.parametrize("filter_name", ["grayscale", "blur"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_format_and_size_are_kept(fmt: str, filter_name: str) -> None:
    data = encoded(photo(size=(20, 12)), fmt)
    params = validate_filter_params(filter_name, {})
    result = decoded(apply_filter(filter_name, params, data))
    assert result.format == fmt
    assert result.size == (20, 12)


def test_jpeg_is_saved_at_quality_90() -> None:
    data = encoded(photo(), "JPEG")
    expected = encoded(Image.open(io.BytesIO(data)).convert("L"), "JPEG", quality=90)
    assert apply_filter("grayscale", {}, data) == expected


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_palette_image_blur(fmt: str) -> None:
    original = photo(mode="P")
    data = encoded(original, fmt)
    result = decoded(apply_filter("blur", {"radius": 2.0}, data))
    expected = decoded(data).convert("RGB").filter(ImageFilter.GaussianBlur(2.0))
    assert result.format == fmt
    assert result.size == original.size
    if fmt == "GIF":
        # GIF can hold only a palette: the blurred RGB image is quantized back.
        assert result.mode == "P"
        assert result.convert("RGB").tobytes() != decoded(data).convert("RGB").tobytes()
    else:
        assert result.mode == "RGB"
        assert result.tobytes() == expected.tobytes()


def test_palette_image_with_transparency_blurs_as_rgba() -> None:
    original = photo(mode="P")
    original.info["transparency"] = 0
    data = encoded(original, "PNG", transparency=0)
    assert "transparency" in decoded(data).info
    result = decoded(apply_filter("blur", {"radius": 1.5}, data))
    expected = decoded(data).convert("RGBA").filter(ImageFilter.GaussianBlur(1.5))
    assert result.mode == "RGBA"
    assert result.tobytes() == expected.tobytes()


def test_bilevel_image_blur() -> None:
    original = photo(mode="1")
    result = decoded(apply_filter("blur", {"radius": 1.0}, encoded(original)))
    expected = original.convert("RGB").filter(ImageFilter.GaussianBlur(1.0))
    assert result.mode == "RGB"
    assert result.tobytes() == expected.tobytes()


def test_sixteen_bit_grayscale_png_blur() -> None:
    original = Image.new("I;16", (8, 8))
    original.putdata([i * 1000 for i in range(64)])
    data = encoded(original)
    assert decoded(data).mode == "I;16"
    result = decoded(apply_filter("blur", {"radius": 2.0}, data))
    assert result.format == "PNG"
    assert result.size == (8, 8)


def test_unknown_filter() -> None:
    with pytest.raises(FilterError, match="unknown filter 'sharpen'") as caught:
        validate_filter_params("sharpen", {})
    assert "blur, grayscale" in str(caught.value)


@pytest.mark.parametrize("name", ["", "Blur", "GRAYSCALE", "blur ", "__init__"])
def test_filter_names_are_exact(name: str) -> None:
    with pytest.raises(FilterError, match="unknown filter"):
        validate_filter_params(name, {})


def test_grayscale_takes_no_params() -> None:
    assert validate_filter_params("grayscale", {"radius": "nonsense", "x": 1}) == {}


@pytest.mark.parametrize("raw", [{}, {"radius": None}, {"radius": ""}, {"other": 5}])
def test_blur_radius_default(raw: dict) -> None:
    assert validate_filter_params("blur", raw) == {"radius": 2.0}
    assert defaults.DEFAULT_BLUR_RADIUS == 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (0.0, 0.0),
        (3, 3.0),
        (2.5, 2.5),
        ("3", 3.0),
        (" 4.5 ", 4.5),
        ("1e1", 10.0),
        (100, 100.0),
        ("100", 100.0),
    ],
)
def test_blur_radius_accepted(value: object, expected: float) -> None:
    params = validate_filter_params("blur", {"radius": value})
    assert params == {"radius": expected}
    assert type(params["radius"]) is float


@pytest.mark.parametrize(
    "value",
    [
        -1,
        -0.001,
        "-2",
        100.001,
        101,
        1e9,
        "1e300",
        math.nan,
        "nan",
        "NaN",
        math.inf,
        -math.inf,
        "inf",
        "-Infinity",
        "abc",
        "2px",
        [],
        [2],
        {},
        {"r": 2},
        object(),
        True,
        False,
    ],
    ids=repr,
)
def test_blur_radius_rejected(value: object) -> None:
    with pytest.raises(FilterError, match="radius must be"):
        validate_filter_params("blur", {"radius": value})


def test_huge_integer_radius_rejected() -> None:
    with pytest.raises(FilterError):
        validate_filter_params("blur", {"radius": 10**400})


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)
