"""Walk an upload's container (segments, chunks, blocks, directories) without decoding pixels.

The upload check must find a cut file and refuse a file whose reading costs far more than
its size, without paying that cost itself: decoding is what a crafted file makes dear (a
2 KB lossless WebP of 7071x7071 pixels decoded into 785 MB). The walkers read only the
container, at C speed where they can, and count what readers iterate over:

- the scans of a JPEG: its decoder passes over the whole image once per scan;
- the frames of an animation (GIF, WebP, PNG) and the pages of a TIFF;
- blocks: PNG chunks, JPEG segments before the first scan, GIF blocks, WebP chunks, the
  directory entries and strips or tiles of one TIFF page, and stray bytes between them.
  Pillow parses each in Python when it opens or verifies a file (a 9 MB TIFF of a million
  strips took it 3.8 s and 310 MB to open), so the walk runs before Pillow opens it.
"""

from __future__ import annotations

import operator
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from foundation.settings import setting
from imaging.rejections import ImageTooComplex, NotAnImage


@dataclass(frozen=True)
class CostLimits:
    """Bounds on what an image may make its readers iterate over, beyond its pixel count."""

    max_jpeg_scans: int = setting("MAX_JPEG_SCANS")
    max_frames: int = setting("MAX_IMAGE_FRAMES")
    max_blocks: int = setting("MAX_IMAGE_BLOCKS")


class _Tally:
    """Counts one kind of thing in a file, and refuses the file once it has too many."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what, self.count = limit, what, 0

    def add(self, count: int = 1) -> None:
        self.count += count
        if self.count > self.limit:
            raise ImageTooComplex(
                f"the file has more than {self.limit} {self.what}, the most DPIP accepts"
            )


def _unpack(fmt: str, data: bytes, at: int) -> tuple:
    """struct.unpack_from, where a file too short for the fields is a truncated one."""
    if at < 0 or at + struct.calcsize(fmt) > len(data):
        raise NotAnImage("the file is truncated: it ends inside its own headers or tables")
    return struct.unpack_from(fmt, data, at)


# JPEG ----------------------------------------------------------------------------------

_JPEG_MARKER = re.compile(rb"\xff\xff*([^\x00\xff])")  # fill bytes, then a marker's code
_JPEG_NO_SEGMENT = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0-7, SOI: no length
_JPEG_FRAME_STARTS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-15
_JPEG_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_JPEG_START_OF_SCAN, _JPEG_END_OF_IMAGE = b"\xff\xda", b"\xff\xd9"
_JPEG_SCAN = re.compile(re.escape(_JPEG_START_OF_SCAN))  # sre searches faster than count()


def _check_jpeg(data: bytes, limits: CostLimits) -> None:
    """Count the header segments and the scans; the last scan must have an end marker.

    Markers cannot occur inside entropy-coded data, so from the first scan on, counting
    start-of-scan markers counts the scans without a walk (a byte pair inside a later
    segment could add one), and a complete file has an end marker after its last scan.
    """
    first_scan, reads_more_scans = _jpeg_first_scan(
        data, _Tally(limits.max_blocks, "JPEG header segments")
    )
    if reads_more_scans:
        scans = _Tally(limits.max_jpeg_scans, "JPEG scans")
        for _marker in _JPEG_SCAN.finditer(data, first_scan):
            scans.add()
    if data.find(_JPEG_START_OF_SCAN, data.rfind(_JPEG_END_OF_IMAGE) + 1) != -1:
        raise NotAnImage("the JPEG is truncated: its last scan has no end marker")


def _jpeg_first_scan(data: bytes, blocks: _Tally) -> tuple[int, bool]:
    """Return where the first scan starts, and whether libjpeg would read more scans.

    Pillow parses the segments before it in Python, stepping over stray and fill bytes one
    by one: they count as blocks. libjpeg reads a second scan only in a progressive frame
    or when the first scan leaves out components; otherwise it fails at once on one, so
    the scans of most photos (baseline, interleaved) need no counting.
    """
    pos, frame_type, components = 2, None, 0
    while marker := _JPEG_MARKER.search(data, pos):
        code_at = marker.start(1)
        blocks.add(code_at - pos)  # the segment, and the bytes before its final 0xFF
        code = data[code_at]
        if code == _JPEG_START_OF_SCAN[1]:
            (scan_components,) = _unpack("B", data, code_at + 3)
            reads_more = frame_type in _JPEG_PROGRESSIVE or scan_components < components
            return code_at - 1, reads_more or frame_type is None
        if code == _JPEG_END_OF_IMAGE[1]:
            raise NotAnImage("the JPEG has no scan: it ends before its image data")
        pos = code_at + 1
        if code in _JPEG_FRAME_STARTS:  # length, precision, height, width, components
            frame_type, (components,) = code, _unpack("B", data, pos + 7)
        if code not in _JPEG_NO_SEGMENT:
            pos += _unpack(">H", data, pos)[0]
    raise NotAnImage("the JPEG is truncated: it ends before its first scan")


# PNG -----------------------------------------------------------------------------------


def _check_png(data: bytes, limits: CostLimits) -> None:
    """Count the chunks, and the frames of an animated PNG, up to IEND.

    Pillow opens and verifies them one by one in Python: a few µs a chunk.
    """
    blocks = _Tally(limits.max_blocks, "PNG chunks")
    frames = _Tally(limits.max_frames, "animation frames")
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        blocks.add()
        if kind == b"IEND":
            return
        if kind == b"fcTL":
            frames.add()
        pos += 12 + length
    raise NotAnImage("the PNG is truncated: it ends before its IEND chunk")


# GIF -----------------------------------------------------------------------------------

_GIF_FULL_SUB_BLOCKS = re.compile(rb"(?:\xff.{255})*", re.DOTALL)
_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B


def _gif_color_table_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _check_gif(data: bytes, limits: CostLimits) -> None:
    """Walk the blocks up to the trailer, counting the frames, without decompressing any."""
    blocks = _Tally(limits.max_blocks, "GIF blocks")
    frames = _Tally(limits.max_frames, "GIF frames")
    pos = 13 + _gif_color_table_size(_unpack("B", data, 10)[0])
    while pos < len(data):
        introducer = data[pos]
        blocks.add()
        if introducer == _GIF_TRAILER:
            return
        if introducer == _GIF_EXTENSION:  # its label, then its sub-blocks
            pos = _skip_gif_sub_blocks(data, pos + 2, blocks)
        elif introducer == _GIF_IMAGE:  # descriptor, local colours, LZW code size, sub-blocks
            frames.add()
            pos += 10 + _gif_color_table_size(_unpack("B", data, pos + 9)[0]) + 1
            pos = _skip_gif_sub_blocks(data, pos, blocks)
        else:  # a stray byte, which Pillow skips one at a time
            pos += 1
    raise NotAnImage("the GIF is truncated: it ends before its trailer")


def _skip_gif_sub_blocks(data: bytes, pos: int, blocks: _Tally) -> int:
    """Return the position after the sub-blocks at `pos` and their terminator.

    Encoders write full 255-byte sub-blocks and one short last one: runs of full ones are
    skipped at C speed, and each short one after the first counts as a block.
    """
    short_ones = 0
    while True:
        pos = _GIF_FULL_SUB_BLOCKS.match(data, min(pos, len(data))).end()
        if pos >= len(data):
            raise NotAnImage("the GIF is truncated: it ends inside a block")
        size = data[pos]
        if size == 0:
            return pos + 1
        pos += 1 + size
        if short_ones:
            blocks.add()
        short_ones += 1


# WebP ----------------------------------------------------------------------------------


def _check_webp(data: bytes, limits: CostLimits) -> None:
    """Every chunk must fit in the RIFF container, and the container in the file.

    libwebp decodes into a canvas of the image's full size; the sizes of the chunks tell a
    cut file without decoding.
    """
    end = 8 + _unpack("<I", data, 4)[0]
    if end > len(data):
        raise NotAnImage(f"the WebP is truncated: it declares {end} bytes and has {len(data)}")
    blocks = _Tally(limits.max_blocks, "WebP chunks")
    frames = _Tally(limits.max_frames, "animation frames")
    for kind, body, body_end in _riff_chunks(data, 12, end, blocks):
        if kind == b"ANMF":  # a frame: a 16-byte header, then its own chunks
            frames.add()
            _riff_chunks(data, body + 16, body_end, blocks)


def _riff_chunks(data: bytes, pos: int, end: int, blocks: _Tally) -> list[tuple[bytes, int, int]]:
    """(kind, start, end) of the bodies of the chunks from `pos` to `end`, which hold them."""
    chunks = []
    while pos < end:
        blocks.add()
        kind, size = _unpack("<4sI", data, pos)
        body = pos + 8
        if body + size > end:
            raise NotAnImage(f"the WebP is truncated: its {kind!r} chunk runs past its end")
        chunks.append((kind, body, body + size))
        pos = body + size + (size & 1)
    return chunks


# BMP -----------------------------------------------------------------------------------

_BMP_RUN_LENGTH = {1, 2}  # RLE8, RLE4: the header gives the size of the compressed data


def _check_bmp(data: bytes, limits: CostLimits) -> None:
    """The pixel data the header describes must lie in the file.

    A run-length encoded BMP is checked against the data size its header declares.
    """
    data_at, header_size = _unpack("<II", data, 10)
    if header_size == 12:  # OS/2 1.x: 16-bit sizes, never compressed
        width, height, _planes, bits = _unpack("<HHHH", data, 18)
        compression = data_size = 0
    else:
        width, height, _planes, bits, compression, data_size = _unpack("<iiHHII", data, 18)
    if compression not in _BMP_RUN_LENGTH:
        data_size = (width * bits + 31) // 32 * 4 * abs(height)
    start = max(data_at, 14 + header_size)
    if start + data_size > len(data):
        raise NotAnImage(
            f"the BMP is truncated: its pixels need {data_size} bytes from byte {start},"
            f" the file has {len(data)}"
        )


# TIFF ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TiffLayout:
    """Byte order and field sizes of classic TIFF or BigTIFF."""

    order: str  # struct's byte order: "<" or ">"
    count: str  # struct code of a directory's number of entries
    offset: str  # struct code of an offset, and of an entry's value field

    @property
    def entry(self) -> struct.Struct:
        return struct.Struct(f"{self.order}HH{self.offset}{struct.calcsize(self.offset)}s")


_TIFF_LAYOUTS = {
    b"II*\x00": _TiffLayout("<", "H", "I"),
    b"MM\x00*": _TiffLayout(">", "H", "I"),
    b"II+\x00": _TiffLayout("<", "Q", "Q"),
    b"MM\x00+": _TiffLayout(">", "Q", "Q"),
}
_TIFF_UINT_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8: what libtiff reads there
_TIFF_DATA_TAGS = ((273, 279), (324, 325))  # StripOffsets/ByteCounts, TileOffsets/ByteCounts
_TIFF_WANTED_TAGS = frozenset(tag for pair in _TIFF_DATA_TAGS for tag in pair)
_TiffEntry = tuple[int, int, bytes]  # type, count, value field (the value, or its offset)


def _check_tiff(data: bytes, limits: CostLimits) -> None:
    """Walk the pages' directories: each page's strips or tiles must lie in the file.

    Pillow makes one tile object per strip of a page when it opens it, so a page's entries
    and strips count as blocks. The directories and strip tables of a real file do not
    overlap: their sizes added up must fit in it, which bounds the walk by the file's size.
    """
    layout = _TIFF_LAYOUTS[data[:4]]
    pages = _Tally(limits.max_frames, "TIFF pages")
    (offset,) = _unpack(layout.order + layout.offset, data, 4 if layout.offset == "I" else 8)
    seen: set[int] = set()
    structure_size = 0
    while offset:
        if offset in seen:
            raise NotAnImage("the TIFF's pages form a loop")
        seen.add(offset)
        pages.add()
        blocks = _Tally(limits.max_blocks, "entries, strips and tiles in one TIFF page")
        entries, next_offset, directory_size = _tiff_directory(data, offset, layout, blocks)
        structure_size += directory_size + _check_tiff_strips(data, entries, layout, blocks)
        if structure_size > len(data):
            raise NotAnImage("the TIFF's directories and strip tables overlap")
        offset = next_offset


def _tiff_directory(
    data: bytes, at: int, layout: _TiffLayout, blocks: _Tally
) -> tuple[dict[int, _TiffEntry], int, int]:
    """Return the data tags of the directory at `at`, the next one's offset and its size."""
    (count,) = _unpack(layout.order + layout.count, data, at)
    blocks.add(count)
    start = at + struct.calcsize(layout.count)
    end = start + count * layout.entry.size
    (next_offset,) = _unpack(layout.order + layout.offset, data, end)
    entries = {
        tag: (kind, number, value)
        for tag, kind, number, value in layout.entry.iter_unpack(data[start:end])
        if tag in _TIFF_WANTED_TAGS
    }
    return entries, next_offset, end + struct.calcsize(layout.offset) - at


def _check_tiff_strips(
    data: bytes, entries: dict[int, _TiffEntry], layout: _TiffLayout, blocks: _Tally
) -> int:
    """Check that the page's strips or tiles lie in the file; return their tables' size."""
    pairs = [
        (entries[offsets], entries.get(counts))
        for offsets, counts in _TIFF_DATA_TAGS
        if offsets in entries and entries[offsets][1] > 0
    ]
    if not pairs:
        raise NotAnImage("a page of the TIFF has no strips or tiles")
    tables_size = 0
    for offsets_entry, counts_entry in pairs:
        if counts_entry is None or counts_entry[1] != offsets_entry[1]:
            raise NotAnImage("a page of the TIFF has not one byte count per strip or tile")
        blocks.add(offsets_entry[1])
        offsets, offsets_size = _tiff_uints(data, offsets_entry, layout)
        counts, counts_size = _tiff_uints(data, counts_entry, layout)
        if max(map(operator.add, offsets, counts)) > len(data):
            raise NotAnImage("the TIFF is truncated: a strip or tile ends past the file's end")
        tables_size += offsets_size + counts_size
    return tables_size


def _tiff_uints(data: bytes, entry: _TiffEntry, layout: _TiffLayout) -> tuple[tuple, int]:
    """The integers of an entry, and their size when they are stored outside it."""
    kind, count, value = entry
    if kind not in _TIFF_UINT_TYPES:
        raise NotAnImage(f"a strip table of the TIFF has type {kind}, not an integer type")
    fmt = f"{layout.order}{count}{_TIFF_UINT_TYPES[kind]}"
    size = struct.calcsize(fmt)
    if size <= len(value):
        return struct.unpack_from(fmt, value), 0
    (at,) = struct.unpack(layout.order + layout.offset, value)
    return _unpack(fmt, data, at), size


# Dispatch ------------------------------------------------------------------------------

_WALKERS: dict[str, Callable[[bytes, CostLimits], None]] = {
    "JPEG": _check_jpeg,
    "PNG": _check_png,
    "GIF": _check_gif,
    "WEBP": _check_webp,
    "BMP": _check_bmp,
    "TIFF": _check_tiff,
}


def format_by_signature(data: bytes) -> str | None:
    """Return the accepted format (Pillow's name) whose signature `data` starts with."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in _TIFF_LAYOUTS:
        return "TIFF"
    return None


def check_structure(data: bytes, limits: CostLimits) -> str | None:
    """Walk the container of `data`; return its format by signature (None: no accepted one).

    Raises NotAnImage when the file is cut or its structure is inconsistent, and
    ImageTooComplex when it has more scans, frames, pages or blocks than `limits` allow.
    """
    image_format = format_by_signature(data)
    if image_format is not None:
        _WALKERS[image_format](data, limits)
    return image_format
