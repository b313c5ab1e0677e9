"""Several images in one HTTP body, for the worker's batch requests: length-prefixed frames.

A frame is a header and an image's bytes: 4 bytes (big-endian) giving the header's length,
the header (a JSON object naming the image, with its `size` in bytes), then the image's
bytes as they are. No base64, no multipart boundary to search for: each image is read in
one piece, and a body is written as a sequence of pieces without joining them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

from foundation.errors import DPIPError

CONTENT_TYPE = "application/vnd.dpip.frames"
HEADER_MAX_BYTES = 4096  # a header names one image: a few dozen bytes
_LENGTH = struct.Struct(">I")


class FrameError(DPIPError):
    """Raised when a body is not a well-formed sequence of frames."""


def frame_head(header: dict[str, Any], size: int) -> bytes:
    """The bytes that go before an image of `size` bytes: its length prefix and header."""
    text = json.dumps({**header, "size": size}, separators=(",", ":")).encode()
    return _LENGTH.pack(len(text)) + text


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    """`size` bytes from `read`, which may answer fewer at a time; fewer only at the end."""
    data = read(size)
    if len(data) >= size or not data:
        return data
    parts, received = [data], len(data)
    while received < size and (more := read(size - received)):
        parts.append(more)
        received += len(more)
    return b"".join(parts)


def read_frames(
    read: Callable[[int], bytes], max_image_bytes: int
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Yield (header, image bytes) per frame from a stream's `read`, until it ends between
    frames; raise FrameError on a cut or malformed frame, or one whose image is said to be
    over `max_image_bytes` (before anything is read or allocated for it)."""
    while prefix := _read_exactly(read, _LENGTH.size):
        if len(prefix) < _LENGTH.size:
            raise FrameError("the body ends inside a frame's length prefix")
        (length,) = _LENGTH.unpack(prefix)
        if length > HEADER_MAX_BYTES:
            raise FrameError(f"a frame header of {length} bytes (at most {HEADER_MAX_BYTES})")
        try:
            header = json.loads(_read_exactly(read, length))
        except (ValueError, RecursionError) as e:
            raise FrameError("a frame header is not JSON") from e
        if not isinstance(header, dict):
            raise FrameError("a frame header is not a JSON object")
        size = header.get("size")
        if type(size) is not int or size < 0:
            raise FrameError("a frame header has no size")
        if size > max_image_bytes:
            raise FrameError(f"a frame of {size} bytes (at most {max_image_bytes})")
        data = _read_exactly(read, size)
        if len(data) < size:
            raise FrameError("the body ends inside a frame's image")
        yield header, data
