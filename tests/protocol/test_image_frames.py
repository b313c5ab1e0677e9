"""Image frames: several images in one body, read back whole; anything else is a FrameError."""

from __future__ import annotations

import io
import json
import struct

import pytest

from protocol.image_frames import HEADER_MAX_BYTES, FrameError, frame_head, read_frames

IMAGES = [({"workload_id": 1, "image_id": 0}, b"\x89PNG" + bytes(range(256)) * 40), ({}, b"")]


def body(images=IMAGES) -> bytes:
    return b"".join(frame_head(header, len(data)) + data for header, data in images)


class Trickle(io.BytesIO):
    """A stream that answers at most 7 bytes a read, as a socket may."""

    def read(self, size: int = -1) -> bytes:
        return super().read(min(size, 7))


@pytest.mark.parametrize("stream", [io.BytesIO, Trickle], ids=["whole", "trickle"])
def test_frames_read_back_as_written(stream) -> None:
    frames = list(read_frames(stream(body()).read, 1 << 20))
    assert frames == [({**header, "size": len(data)}, data) for header, data in IMAGES]


def test_an_empty_body_has_no_frames() -> None:
    assert list(read_frames(io.BytesIO(b"").read, 1 << 20)) == []


def _with_header(header: bytes, rest: bytes = b"") -> bytes:
    return struct.pack(">I", len(header)) + header + rest


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(body()[:2], id="cut-in-the-prefix"),
        pytest.param(body()[:10], id="cut-in-the-header"),
        pytest.param(body()[:-1], id="cut-in-the-image"),
        pytest.param(struct.pack(">I", HEADER_MAX_BYTES + 1) + b"{}", id="header-too-long"),
        pytest.param(_with_header(b"not json"), id="header-not-json"),
        pytest.param(_with_header(b"[1, 2]"), id="header-not-an-object"),
        pytest.param(_with_header(b'{"size": "3"}', b"abc"), id="size-a-string"),
        pytest.param(_with_header(b'{"size": -1}'), id="size-negative"),
        pytest.param(_with_header(b'{"size": true}'), id="size-a-bool"),
        pytest.param(_with_header(b'{"id": 1}'), id="no-size"),
        pytest.param(_with_header(b"[" * 3000), id="header-deeply-nested"),
    ],
)
def test_a_malformed_body_is_a_frame_error(data: bytes) -> None:
    with pytest.raises(FrameError):
        list(read_frames(io.BytesIO(data).read, 1 << 20))


def test_an_image_claimed_over_the_bound_is_refused_before_it_is_read() -> None:
    reads: list[int] = []
    stream = io.BytesIO(_with_header(json.dumps({"size": 2**40}).encode()))

    def read(size: int) -> bytes:
        reads.append(size)
        return stream.read(size)

    with pytest.raises(FrameError, match="at most 1000"):
        list(read_frames(read, 1000))
    assert max(reads) < 1000  # nothing was asked for the claimed terabyte
