"""Uploading many images: what an item to upload may be, batches of them as multipart
bodies read from disk as they are sent, and several batches in flight with their answers
kept in the order sent.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from client import defaults
from client.errors import UploadSourceError

# A path (its name is kept as the filename), bare bytes (no filename), or a filename with
# bytes or with a path.
UploadItem = str | os.PathLike | bytes | tuple[str, bytes | str | os.PathLike]
IMAGE_FIELD = "data"
T = TypeVar("T")


@dataclass(frozen=True)
class UploadPart:
    """One image to send: the filename the API is to keep, and its bytes or its file."""

    filename: str | None
    size: int
    source: bytes | Path

    def chunks(self, chunk_bytes: int) -> Iterator[bytes]:
        """The image's bytes in pieces; a file that is not `size` bytes long any more raises
        UploadSourceError (the body's length was promised already)."""
        if isinstance(self.source, bytes):
            yield self.source
            return
        left = self.size
        try:
            with open(self.source, "rb") as file:
                while left and (chunk := file.read(min(chunk_bytes, left))):
                    left -= len(chunk)
                    yield chunk
                changed = left > 0 or file.read(1) != b""
        except OSError as e:
            raise UploadSourceError(f"{self.source}: {e.strerror or e}") from e
        if changed:
            raise UploadSourceError(f"{self.source} changed size while it was being sent")

    def body(self, chunk_bytes: int = defaults.UPLOAD_CHUNK_BYTES) -> bytes | SizedBody:
        """The image as a request's whole body: its bytes, or its file read as it is sent."""
        if isinstance(self.source, bytes):
            return self.source
        return SizedBody(self.size, lambda: self.chunks(chunk_bytes))


class SizedBody:
    """A body of known length (sent with a Content-Length, not chunked), made of pieces
    produced afresh on each iteration, so a resend sends it whole again."""

    def __init__(self, length: int, pieces: Callable[[], Iterator[bytes]]) -> None:
        self.length = length
        self._pieces = pieces

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces()


def _file_part(filename: str | None, path: str | os.PathLike) -> UploadPart:
    path = Path(path)
    try:
        info = path.stat()
    except OSError as e:
        raise UploadSourceError(f"{path}: {e.strerror or e}") from e
    if not stat.S_ISREG(info.st_mode):
        raise UploadSourceError(f"{path} is not a regular file")
    return UploadPart(filename, info.st_size, path)


def as_part(item: UploadItem) -> UploadPart:
    """The part for one item; a path is checked (it exists, a file) but not read yet."""
    if isinstance(item, bytes | bytearray | memoryview):
        return UploadPart(None, len(item), bytes(item))
    if isinstance(item, str | os.PathLike):
        return _file_part(Path(item).name, item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        filename, source = item
        if isinstance(source, bytes | bytearray | memoryview):
            return UploadPart(filename, len(source), bytes(source))
        if isinstance(source, str | os.PathLike):
            return _file_part(filename, source)
    raise TypeError(
        "an item to upload is a path, bytes, or (filename, bytes or path),"
        f" not {type(item).__name__}"
    )


def in_batches(parts: Sequence[UploadPart], size: int) -> list[Sequence[UploadPart]]:
    """`parts` in order, cut into batches of at most `size`."""
    if size < 1:
        raise ValueError(f"a batch holds at least 1 image, not {size}")
    return [parts[start : start + size] for start in range(0, len(parts), size)]


def _header_text(filename: str) -> str:
    """A filename as a quoted-string of a part's header: backslash and quote escaped (as
    Werkzeug reads them back); line breaks, NUL and lone surrogates, which the header
    cannot carry, become U+FFFD, as the API would store any control character."""
    safe = "".join(
        "\ufffd" if ch in "\r\n\0" or "\ud800" <= ch <= "\udfff" else ch for ch in filename
    )
    return safe.replace("\\", "\\\\").replace('"', '\\"')


def _part_head(boundary: str, filename: str | None) -> bytes:
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{IMAGE_FIELD}";'
        f' filename="{_header_text(filename or "")}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


class MultipartForm:
    """A batch as a multipart form, one file part `data` per image, read from its files
    piece by piece as it is sent. Its length is known first, so it goes with a
    Content-Length; each iteration starts over, so a resend sends it whole again.

    A part without a filename is sent with an empty one: the API then keeps none.
    """

    def __init__(
        self, parts: Sequence[UploadPart], chunk_bytes: int = defaults.UPLOAD_CHUNK_BYTES
    ) -> None:
        self.parts = parts
        self.chunk_bytes = chunk_bytes
        self.boundary = secrets.token_hex(16)  # 128 random bits: never inside an image
        self._heads = [_part_head(self.boundary, part.filename) for part in parts]
        self._tail = f"--{self.boundary}--\r\n".encode()
        self.length = sum(
            len(head) + part.size + 2 for head, part in zip(self._heads, parts, strict=True)
        ) + len(self._tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        for head, part in zip(self._heads, self.parts, strict=True):
            yield head
            yield from part.chunks(self.chunk_bytes)
            yield b"\r\n"
        yield self._tail


def send_in_order(
    batches: Sequence[Sequence[UploadPart]],
    send: Callable[[Sequence[UploadPart]], list[T]],
    executor: Executor,
    in_flight: int,
    on_batch: Callable[[list[T]], None] | None = None,
) -> list[T]:
    """`send` every batch on `executor`, at most `in_flight` at once, and answer their
    results concatenated in the order of `batches`. `on_batch` gets each batch's result as
    it comes (on this thread). On a failure no further batch starts; the batches in flight
    finish (and reach `on_batch`), then the first failure is raised."""
    if in_flight < 1:
        raise ValueError(f"at least 1 batch must be in flight, not {in_flight}")
    results: list[list[T] | None] = [None] * len(batches)
    pending: dict[Future[list[T]], int] = {}
    started = 0
    failure: BaseException | None = None
    while pending or (failure is None and started < len(batches)):
        while failure is None and started < len(batches) and len(pending) < in_flight:
            pending[executor.submit(send, batches[started])] = started
            started += 1
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            index = pending.pop(future)
            try:
                results[index] = future.result()
                if on_batch is not None:
                    on_batch(results[index])
            except Exception as e:
                failure = failure or e
    if failure is not None:
        raise failure
    return [item for result in results if result is not None for item in result]
