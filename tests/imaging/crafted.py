"""Crafted images for the upload-check tests: tiny files that are dear to read, or cut."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

_TIFF_CODES = {3: "H", 4: "I"}  # SHORT, LONG
SHORT, LONG = 3, 4


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def flat_lossless_webp(width: int, height: int) -> bytes:
    """A lossless WebP of one colour: a few dozen bytes whatever its size.

    libwebp codes a flat image with one-symbol prefix codes, which take no bits per pixel,
    so its bitstream does not depend on the size: a small one gets the size patched in.
    """
    data = bytearray(
        encoded(Image.new("RGB", (64, 64), (10, 20, 30)), "WEBP", lossless=True, method=0)
    )
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def jpeg_with_empty_scans(
    count: int, size: tuple[int, int] = (64, 48), progressive: bool = True
) -> bytes:
    """A (progressive) JPEG with `count` more scans: copies of its last one, without data.

    Each repeats a refinement that adds nothing, yet the decoder passes over the whole image
    for each: at 1920x1080, 2,000 of them take 47 KB and 0.76 s to decode.
    """
    data = encoded(Image.linear_gradient("L").resize(size), "JPEG", progressive=progressive)
    last_scan = data.rindex(b"\xff\xda")
    length = int.from_bytes(data[last_scan + 2 : last_scan + 4], "big")
    header = data[last_scan : last_scan + 2 + length]
    end = data.rindex(b"\xff\xd9")
    return data[:end] + header * count + data[end:]


def gif_with_frames(count: int) -> bytes:
    """A 1x1 GIF of `count` identical frames, about 20 bytes each."""
    data = encoded(Image.new("P", (1, 1)), "GIF")
    color_table = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    start = 13 + color_table
    assert data[-1:] == b";"
    return data[:start] + data[start:-1] * count + b";"


def png_with_chunks(count: int) -> bytes:
    """A 1x1 PNG with `count` empty private chunks before its end: 12 bytes each."""
    data = encoded(Image.new("RGB", (1, 1)), "PNG")
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"prVt", b"") * count + data[iend:]


def tiff(pages: list[dict[int, tuple[int, list[int]]]], pixels: bytes, loop: bool = False) -> bytes:
    """A little-endian TIFF: the pixels at byte 8, then each page's directory and tables.

    `pages` maps tag → (type, values) for each page; values longer than 4 bytes follow the
    directory. With `loop`, the last page points back at the first.
    """
    body = bytearray(b"II*\x00\x00\x00\x00\x00" + pixels)
    next_at = 4  # where the offset of the next directory goes
    for tags in pages:
        body += b"\x00" * (len(body) % 2)
        at = len(body)
        body[next_at : next_at + 4] = struct.pack("<I", at)
        next_at = at + 2 + 12 * len(tags)
        entries, tables = [], bytearray()
        for tag in sorted(tags):
            kind, values = tags[tag]
            raw = struct.pack(f"<{len(values)}{_TIFF_CODES[kind]}", *values)
            if len(raw) > 4:
                raw, tables = struct.pack("<I", next_at + 4 + len(tables)), tables + raw
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\x00"))
        body += struct.pack("<H", len(tags)) + b"".join(entries) + b"\x00" * 4 + tables
    if loop:
        body[next_at : next_at + 4] = body[4:8]
    return bytes(body)


def grey_tiff(rows: int = 1, pages: int = 1, byte_count: int = 1, loop: bool = False) -> bytes:
    """A TIFF of `pages` 1-pixel-wide grey pages of `rows` rows, one strip per row.

    Each strip declares `byte_count` bytes; the pixel bytes are shared by the pages.
    """
    page = {
        256: (SHORT, [1]),  # ImageWidth
        257: (LONG, [rows]),  # ImageLength
        258: (SHORT, [8]),  # BitsPerSample
        259: (SHORT, [1]),  # Compression: none
        262: (SHORT, [1]),  # PhotometricInterpretation: black is zero
        273: (LONG, [8 + row for row in range(rows)]),  # StripOffsets
        278: (SHORT, [1]),  # RowsPerStrip
        279: (LONG, [byte_count] * rows),  # StripByteCounts
    }
    return tiff([page] * pages, bytes(range(256)) * (rows // 256) + bytes(rows % 256), loop)


def tiled_grey_tiff() -> bytes:
    """A 32x32 grey TIFF of four 16x16 tiles, which Pillow cannot write."""
    tiles = [bytes([value]) * 256 for value in (0, 80, 160, 240)]
    page = {
        256: (SHORT, [32]),
        257: (SHORT, [32]),
        258: (SHORT, [8]),
        259: (SHORT, [1]),
        262: (SHORT, [1]),
        322: (SHORT, [16]),  # TileWidth
        323: (SHORT, [16]),  # TileLength
        324: (LONG, [8 + 256 * index for index in range(4)]),  # TileOffsets
        325: (LONG, [256] * 4),  # TileByteCounts
    }
    return tiff([page], b"".join(tiles))
