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

from foundation import defaults
from imaging.inspection import (
    ALLOWED_FORMATS,
    CostLimits,
    ImageInfo,
    ImageRejected,
    ImageTooComplex,
    ImageTooLarge,
    NotAnImage,
    inspect_image,
)
from tests.imaging.crafted import (
    flat_lossless_webp,
    gif_with_frames,
    grey_tiff,
    jpeg_with_empty_scans,
    png_with_chunks,
    tiled_grey_tiff,
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
    assert issubclass(ImageTooComplex, ImageRejected)
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
    ],
    ids=["text", "json", "svg", "zeros"],
)
def test_non_images_are_rejected(data: bytes) -> None:
    with pytest.raises(NotAnImage, match="not a readable image"):
        inspect_image(data, LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"\xff\xd8\xff",
        b"II*\x00",
        b"BM",
        b"RIFF\x24\0\0\0WEBPVP8 ",
    ],
    ids=["png", "gif", "jpeg", "tiff", "bmp", "webp"],
)
def test_a_signature_alone_is_truncated(data: bytes) -> None:
    with pytest.raises(NotAnImage, match="truncated"):
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


# Images that are cheap to send and dear to read: the check walks their structure without
# decoding a pixel, and refuses those that would cost their readers more than real files do.


def test_a_jpeg_with_more_scans_than_any_encoder_writes_is_refused() -> None:
    data = jpeg_with_empty_scans(40_000)  # the attack: ~400 KB, seconds of a worker per 1000
    assert len(data) < 500_000
    with pytest.raises(ImageTooComplex, match="100 JPEG scans"):
        inspect_image(data, LIMIT)


def test_the_scan_limit_counts_every_scan() -> None:
    data = jpeg_with_empty_scans(5)
    assert Image.open(io.BytesIO(data)).getextrema()  # the premise: it decodes
    scans = data.count(b"\xff\xda")
    assert inspect_image(data, LIMIT, CostLimits(max_jpeg_scans=scans)).format == "JPEG"
    with pytest.raises(ImageTooComplex):
        inspect_image(data, LIMIT, CostLimits(max_jpeg_scans=scans - 1))


def test_the_scans_of_a_baseline_jpeg_are_not_counted() -> None:
    # libjpeg fails at once on a second scan of a baseline JPEG with all its components in
    # the first, so extra scans cost nothing there, and most photos skip the count.
    data = jpeg_with_empty_scans(200, progressive=False)
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()
    assert inspect_image(data, LIMIT).format == "JPEG"


def test_bytes_skipped_between_jpeg_segments_count_as_blocks() -> None:
    # Pillow steps over stray and fill bytes before a marker one at a time, in Python.
    data = encoded("JPEG")
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    padded = data[:app0_end] + b"\x00" * 100 + data[app0_end:]
    assert inspect_image(padded, LIMIT, CostLimits(max_blocks=200)).format == "JPEG"
    with pytest.raises(ImageTooComplex, match="JPEG header segments"):
        inspect_image(padded, LIMIT, CostLimits(max_blocks=100))


def test_a_lossless_webp_is_checked_without_decoding_its_pixels() -> None:
    """A 38-byte WebP of 7071x7071 pixels once cost the check 785 MB: now only its headers."""
    data = flat_lossless_webp(7071, 7071)
    assert len(data) < 100
    script = (
        "import resource, sys\n"
        "from imaging.inspection import inspect_image\n"
        "data = sys.stdin.buffer.read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(inspect_image(data, 50_000_000).width)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=data,
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    width, peak_growth_mb = (int(line) for line in done.stdout.split())
    assert width == 7071
    assert peak_growth_mb < 32  # its canvas alone is 200 MB


@pytest.mark.parametrize(
    "make",
    [
        lambda: gif_with_frames(10_001),
        lambda: grey_tiff(pages=10_001),
    ],
    ids=["gif-frames", "tiff-pages"],
)
def test_more_frames_or_pages_than_the_limit_are_refused(make) -> None:
    with pytest.raises(ImageTooComplex, match="more than 10000"):
        inspect_image(make(), LIMIT)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("GIF", {}),
        ("TIFF", {}),
        ("WEBP", {"lossless": True}),
        ("PNG", {}),  # APNG
    ],
)
def test_the_frame_limit_applies_to_every_animated_format(fmt: str, options: dict) -> None:
    frames = [Image.new("RGB", (8, 8), (index * 60, 0, 0)) for index in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], **options)
    data = out.getvalue()
    assert inspect_image(data, LIMIT, CostLimits(max_frames=3)).format == fmt
    with pytest.raises(ImageTooComplex, match="more than 2"):
        inspect_image(data, LIMIT, CostLimits(max_frames=2))


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: png_with_chunks(50_000), "PNG chunks"),  # Pillow: ~10 µs each, in Python
        (lambda: grey_tiff(rows=50_000), "one TIFF page"),  # Pillow: a tile object each
    ],
    ids=["png-chunks", "tiff-strips"],
)
def test_more_blocks_than_the_limit_are_refused(make, what: str) -> None:
    with pytest.raises(ImageTooComplex, match=what):
        inspect_image(make(), LIMIT)


def test_a_gif_made_of_short_sub_blocks_counts_them() -> None:
    data = bytearray(gif_with_frames(1))
    data[-1:] = b"\x21\xfe" + b"\x01c" * 100 + b"\x00;"  # a comment in 1-byte sub-blocks
    data = bytes(data)
    assert inspect_image(data, LIMIT, CostLimits(max_blocks=200)).format == "GIF"
    with pytest.raises(ImageTooComplex, match="GIF blocks"):
        inspect_image(data, LIMIT, CostLimits(max_blocks=100))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: grey_tiff(byte_count=10_000), "past the file's end"),
        (lambda: encoded_pages("TIFF", 2)[:-20], "truncated"),
        (lambda: grey_tiff(pages=2, loop=True), "loop"),
    ],
    ids=["strip-count-past-the-end", "second-page-cut", "pages-in-a-loop"],
)
def test_a_tiff_with_bad_strips_or_pages_is_refused(make, message: str) -> None:
    # Decoding the first page, as the check once did, finds none of these.
    data = make()
    assert Image.open(io.BytesIO(data)).getextrema()
    with pytest.raises(NotAnImage, match=message):
        inspect_image(data, LIMIT)


def test_a_gif_cut_in_its_second_frame_is_refused() -> None:
    data = encoded_pages("GIF", 2)
    assert Image.open(io.BytesIO(data[:-10])).getextrema()  # its first frame decodes
    with pytest.raises(NotAnImage, match="truncated"):
        inspect_image(data[:-10], LIMIT)


def test_a_tiff_with_a_nonstandard_signature_is_refused() -> None:
    data = b"II\x00\x2a" + encoded("TIFF")[4:]  # Pillow reads it, guessing the byte order
    assert Image.open(io.BytesIO(data)).format == "TIFF"
    with pytest.raises(NotAnImage, match="signature"):
        inspect_image(data, LIMIT)


def encoded_pages(fmt: str, count: int, size: tuple[int, int] = (16, 12)) -> bytes:
    pages = [Image.new("RGB", size, (index * 90, 40, 200)) for index in range(count)]
    out = io.BytesIO()
    pages[0].save(out, format=fmt, save_all=True, append_images=pages[1:])
    return out.getvalue()


def _saved(mode: str, fmt: str, size: tuple[int, int] = (16, 12), **options) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


NORMAL_IMAGES = {
    "progressive-jpeg": lambda: _saved("RGB", "JPEG", progressive=True),
    "cmyk-jpeg": lambda: _saved("CMYK", "JPEG"),
    "jpeg-with-restart-markers": lambda: _saved("L", "JPEG", restart_marker_blocks=1),
    "jpeg-with-exif-thumbnail": jpeg_with_thumbnail,
    "16-bit-png": lambda: _saved("I;16", "PNG"),
    "palette-png-with-transparency": lambda: _saved("P", "PNG", transparency=0),
    "animated-png": lambda: encoded_pages("PNG", 3),
    "lossy-webp-with-alpha": lambda: _saved("RGBA", "WEBP"),
    "lossless-webp": lambda: _saved("RGB", "WEBP", lossless=True),
    "flat-lossless-webp-7071x7071": lambda: flat_lossless_webp(7071, 7071),
    "animated-webp": lambda: encoded_pages("WEBP", 3),
    "1-bit-bmp": lambda: _saved("1", "BMP"),
    "palette-bmp": lambda: _saved("P", "BMP"),
    "32-bit-bmp": lambda: _saved("RGBA", "BMP"),
    "gif-with-comment": lambda: _saved("P", "GIF", comment=b"made by a test"),
    "animated-gif": lambda: encoded_pages("GIF", 3),
    "multi-page-tiff": lambda: encoded_pages("TIFF", 3),
    "lzw-tiff": lambda: _saved("RGB", "TIFF", compression="tiff_lzw"),
    "jpeg-tiff": lambda: _saved("RGB", "TIFF", compression="jpeg"),
    "group4-tiff": lambda: _saved("1", "TIFF", compression="group4"),
    "bigtiff": lambda: _saved("RGB", "TIFF", big_tiff=True),
    "deflate-tiff-of-many-strips": lambda: _saved(
        "RGB", "TIFF", (300, 200), compression="tiff_deflate", strip_size=1024
    ),
    "tiled-tiff": tiled_grey_tiff,
}


@pytest.mark.parametrize("name", NORMAL_IMAGES)
def test_normal_images_of_every_kind_pass(name: str) -> None:
    data = NORMAL_IMAGES[name]()
    info = inspect_image(data, defaults.MAX_IMAGE_PIXELS)
    assert info.format == Image.open(io.BytesIO(data)).format
