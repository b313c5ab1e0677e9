"""Upload checks: accepted formats, broken files, pixel limits and decompression bombs."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from dpip import defaults
from imaging.inspection import (
    ALLOWED_FORMATS,
    ImageInfo,
    ImageRejected,
    ImageTooLarge,
    NotAnImage,
    inspect_image,
)

LIMIT = 1_000_000


def encoded(fmt: str, size: tuple[int, int] = (16, 12)) -> bytes:
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 37) % 256, (y * 53) % 256, (x * y) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR is patched to declare another size (CRC fixed up)."""
    data = bytearray(encoded("PNG", (4, 4)))
    assert data[12:16] == b"IHDR"
    data[16:20] = struct.pack(">I", width)
    data[20:24] = struct.pack(">I", height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


FORMAT_NAMES = [
    ("JPEG", "jpg", "image/jpeg"),
    ("PNG", "png", "image/png"),
    ("WEBP", "webp", "image/webp"),
    ("BMP", "bmp", "image/bmp"),
    ("TIFF", "tiff", "image/tiff"),
    ("GIF", "gif", "image/gif"),
]


@pytest.mark.parametrize("fmt", [fmt for fmt, _, _ in FORMAT_NAMES])
def test_allowed_format_is_accepted(fmt: str) -> None:
    assert inspect_image(encoded(fmt, (16, 12)), LIMIT) == ImageInfo(fmt, 16, 12)


@pytest.mark.parametrize(("fmt", "extension", "mime"), FORMAT_NAMES)
def test_extension_and_mime_type(fmt: str, extension: str, mime: str) -> None:
    info = inspect_image(encoded(fmt, (16, 12)), LIMIT)
    assert info.extension == extension
    assert info.mime_type == mime


def test_mime_type_is_known_before_any_image_is_opened() -> None:
    # A fresh process (an API just restarted) serves downloads before any upload.
    script = (
        "from imaging.inspection import ImageInfo; "
        "print(ImageInfo('JPEG', 1, 1).mime_type, ImageInfo('GIF', 1, 1).extension)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert done.stdout.split() == ["image/jpeg", "gif"]


def test_every_allowed_format_is_tested() -> None:
    assert set(ALLOWED_FORMATS) == {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"}


def test_exceptions_share_a_base() -> None:
    assert issubclass(NotAnImage, ImageRejected)
    assert issubclass(ImageTooLarge, ImageRejected)
    assert issubclass(ImageRejected, ValueError)


def test_empty_bytes() -> None:
    with pytest.raises(NotAnImage, match="empty"):
        inspect_image(b"", LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is plain text and not an image\n",
        b'{"image": "no"}',
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b"\x00" * 64,
        b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing else
        b"GIF89a",
    ],
    ids=["text", "json", "svg", "zeros", "png-signature-only", "gif-signature-only"],
)
def test_non_images_are_rejected(data: bytes) -> None:
    with pytest.raises(NotAnImage, match="not a readable image"):
        inspect_image(data, LIMIT)


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "PCX", "TGA"])
def test_unsupported_format_is_rejected(fmt: str) -> None:
    data = encoded(fmt, (16, 16))
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself reads it
    with pytest.raises(NotAnImage, match=f"format {fmt} is not accepted"):
        inspect_image(data, LIMIT)


# Truncated or damaged PNGs: Image.open reads the chunks up to the first IDAT, and
# verify() then walks the rest checking every chunk's CRC without decoding pixels.


def test_png_cut_inside_the_image_data() -> None:
    data = encoded("PNG")
    with pytest.raises(NotAnImage):
        inspect_image(data[: len(data) // 2], LIMIT)


def test_png_without_iend_is_truncated() -> None:
    data = encoded("PNG")
    assert data[-8:-4] == b"IEND"
    with pytest.raises(NotAnImage, match="truncated"):
        inspect_image(data[:-12], LIMIT)


def test_png_with_a_damaged_idat_crc() -> None:
    data = bytearray(encoded("PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # a byte of compressed data: the chunk's CRC no longer matches
    with pytest.raises(NotAnImage, match="IDAT"):
        inspect_image(bytes(data), LIMIT)


def test_png_with_a_damaged_ihdr_crc() -> None:
    data = bytearray(encoded("PNG"))
    data[29] ^= 0xFF
    with pytest.raises(NotAnImage):
        inspect_image(bytes(data), LIMIT)


def test_png_whose_iend_crc_is_damaged_is_accepted() -> None:
    # verify() stops at IEND without checking its CRC: the image data itself is intact.
    data = bytearray(encoded("PNG"))
    data[-1] ^= 0xFF
    assert inspect_image(bytes(data), LIMIT) == ImageInfo("PNG", 16, 12)


def test_png_with_trailing_bytes_is_accepted() -> None:
    assert inspect_image(encoded("PNG") + b"trailing junk", LIMIT) == ImageInfo("PNG", 16, 12)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF", "WEBP", "JPEG"])
def test_truncated_pixel_data_is_rejected(fmt: str) -> None:
    # verify() does not decode these formats' pixels: the upload check must find the cut.
    data = encoded(fmt)[: len(encoded(fmt)) // 2]
    with pytest.raises(NotAnImage):
        inspect_image(data, LIMIT)


def jpeg_with_thumbnail() -> bytes:
    """A JPEG whose EXIF block holds a whole JPEG thumbnail, end marker included."""
    exif = Image.Exif()
    exif[0x010E] = "holiday"  # ImageDescription
    image = Image.open(io.BytesIO(encoded("JPEG", (64, 48))))
    thumbnail = encoded("JPEG", (8, 6))
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes() + thumbnail)
    return out.getvalue()


def test_jpeg_cut_after_an_embedded_end_marker_is_rejected() -> None:
    data = jpeg_with_thumbnail()
    assert inspect_image(data, LIMIT) == ImageInfo("JPEG", 64, 48)
    first_scan = data.rfind(b"\xff\xda")
    assert 0 < data.find(b"\xff\xd9") < first_scan  # the thumbnail's end marker comes first
    with pytest.raises(NotAnImage, match="truncated"):
        inspect_image(data[: first_scan + 40], LIMIT)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF"])
def test_header_only_is_rejected(fmt: str) -> None:
    with pytest.raises(NotAnImage):
        inspect_image(encoded(fmt)[:30], LIMIT)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG"])
def test_pixel_limit(fmt: str) -> None:
    data = encoded(fmt, (8, 6))
    assert inspect_image(data, max_pixels=48) == ImageInfo(fmt, 8, 6)
    with pytest.raises(ImageTooLarge, match="8x6 is over the limit of 47 pixels"):
        inspect_image(data, max_pixels=47)


def test_patched_png_header_is_read_as_declared() -> None:
    assert inspect_image(png_claiming_size(5, 7), LIMIT).width == 5
    with pytest.raises(ImageTooLarge):
        inspect_image(png_claiming_size(2000, 1000), LIMIT)


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (100_000, 100_000),  # over twice Pillow's limit: DecompressionBombError at open
        (10_000, 10_000),  # over Pillow's limit: its warning is turned into an error
        (8_000, 8_000),  # under Pillow's limit, over DPIP's own 50 megapixels
    ],
)
def test_png_decompression_bomb_header(width: int, height: int) -> None:
    data = png_claiming_size(width, height)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge):
        inspect_image(data, defaults.MAX_IMAGE_PIXELS)


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (10_000, 10_000)])
def test_pillow_bomb_checks_apply_even_with_a_generous_limit(width: int, height: int) -> None:
    with pytest.raises(ImageTooLarge, match="over the pixel limit"):
        inspect_image(png_claiming_size(width, height), max_pixels=10**12)
