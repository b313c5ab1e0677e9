"""Make the test's photos and judge the server's results against Pillow's own filter."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.pool import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
JPEG_QUALITY = 90  # the server's setting, so the reference result is encoded the same way
JPEG_TOLERANCE = 2  # largest pixel difference accepted for JPEG; lossless formats must match
NOISE_AMPLITUDE = 12  # sensor-like noise, so JPEG compresses the image like a photo


def encode(image: Image.Image, image_format: str) -> bytes:
    """Encode as the server does: JPEG at quality 90, other formats with Pillow's defaults."""
    out = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if image_format == "JPEG" else {}
    image.save(out, format=image_format, **options)
    return out.getvalue()


def _gradient(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    corners = rng.uniform(0, 255, (4, 3)).astype(np.float32)
    across = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    down = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    top = corners[0] * (1 - across) + corners[1] * across
    bottom = corners[2] * (1 - across) + corners[3] * across
    return Image.fromarray((top * (1 - down) + bottom * down).astype(np.uint8), "RGB")


def _draw_shapes(rng: np.random.Generator, image: Image.Image) -> None:
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(int(rng.integers(12, 30))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        rx, ry = (int(v) for v in rng.integers(1, max(2, min(width, height) // 3), 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour)
        elif shape == 1:
            draw.rectangle((x - rx, y - ry, x + rx, y + ry), fill=colour)
        else:
            points = rng.integers(-rx, rx + 1, (5, 2)) + np.array([x, y])
            draw.polygon([(int(px), int(py)) for px, py in points], fill=colour)


def generate_image(index: int, size: tuple[int, int], image_format: str) -> bytes:
    """Draw a photo-like picture that depends only on its index, size and format.

    Shapes are drawn at a quarter of the size and scaled up so their edges are soft, then
    noise is added: JPEG then works as hard as on a photo, not as on a flat drawing.
    """
    rng = np.random.default_rng(index)
    width, height = size
    small = _gradient(rng, (max(8, width // 4), max(8, height // 4)))
    _draw_shapes(rng, small)
    image = small.resize(size, Image.Resampling.BICUBIC)
    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (height, width, 3), np.int16)
    pixels = np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels, "RGB"), image_format)


def generate_images(
    pool: Pool, count: int, size: tuple[int, int], image_format: str
) -> list[bytes]:
    """Generate images 0..count-1 in the pool."""
    tasks = [(index, size, image_format) for index in range(count)]
    return pool.starmap(generate_image, tasks, chunksize=max(1, count // 64))


def reference_filter(image: Image.Image, filter_name: str, radius: float) -> Image.Image:
    """Pillow's own result of a DPIP filter (grayscale or blur)."""
    if filter_name == "grayscale":
        return image.convert("L")
    return image.filter(ImageFilter.GaussianBlur(radius))


def filter_image_bytes(data: bytes, filter_name: str, radius: float) -> bytes:
    """Decode, filter and encode one image as a worker does: the unit of work of the raw
    limit and of the peers the benchmark compares DPIP with."""
    with Image.open(io.BytesIO(data)) as image:
        image_format = image.format
        result = reference_filter(image, filter_name, radius)
    return encode(result, image_format)


@dataclass(frozen=True)
class Check:
    """One downloaded result and what it should be the result of."""

    original: bytes
    filtered: bytes
    filter_name: str
    radius: float
    image_format: str


def result_is_correct(check: Check) -> bool:
    """Compare the server's result with Pillow's, encoded the server's way for JPEG."""
    with Image.open(io.BytesIO(check.original)) as original:
        expected = reference_filter(original, check.filter_name, check.radius)
    tolerance = 0
    if check.image_format == "JPEG":
        expected = Image.open(io.BytesIO(encode(expected, "JPEG")))
        tolerance = JPEG_TOLERANCE
    try:
        with Image.open(io.BytesIO(check.filtered)) as result:
            if (result.format, result.mode, result.size) != (
                check.image_format,
                expected.mode,
                expected.size,
            ):
                return False
            difference = np.abs(np.asarray(result, np.int16) - np.asarray(expected, np.int16))
    except OSError:  # undecodable bytes are a wrong result, counted as such
        return False
    return int(difference.max()) <= tolerance


def verdicts(pool: Pool, checks: list[Check]) -> Iterator[bool]:
    """result_is_correct of each check, in order, computed in the pool."""
    return pool.imap(result_is_correct, checks, chunksize=max(1, len(checks) // 64))
