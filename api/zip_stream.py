"""Write a zip as it is sent: entries copied from files piece by piece, then a JSON manifest.

zipfile writes to a stream it cannot seek by putting each entry's sizes and CRC after its
data (a data descriptor), so nothing is held back: memory stays at one piece of a file and
zipfile's list of entries (a few hundred bytes each), whatever the archive's size.
"""

from __future__ import annotations

import functools
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from imagestore import SizedStream

ENTRY_MODE = 0o644 << 16  # unzipped files are readable (zipfile's default is 0600)


@dataclass(frozen=True)
class ZipEntry:
    """A file to add to the archive under `name`."""

    name: str
    source: Path | SizedStream  # a local file, or an object store's stream
    compress: bool  # deflate it (formats stored uncompressed), or store it as it is


class _Pieces:
    """Where zipfile writes: it keeps what was written until it is taken (no seek, no tell,
    so zipfile writes data descriptors)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> int:
        self._buffer += data  # one copy; zipfile writes ~8 small pieces per entry
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


@contextmanager
def _opened(source: Path | SizedStream) -> Iterator[tuple[int, Callable[[int], bytes]]]:
    """The source's size and its read function, closed at the end.

    A local file is read unbuffered: a Python file object costs more than reading a small
    image.
    """
    if not isinstance(source, Path):
        with source:
            yield source.size, source.read
        return
    fd = os.open(source, os.O_RDONLY)
    try:
        yield os.fstat(fd).st_size, functools.partial(os.read, fd)
    finally:
        os.close(fd)


def _info(name: str, size: int, compress: bool, date_time: tuple[int, ...]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=date_time[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.file_size = size  # so zipfile picks zip64 records for a file that needs them
    info.external_attr = ENTRY_MODE
    return info


def stream_zip(
    entries: Iterable[ZipEntry],
    manifest_name: str,
    manifest_head: dict[str, Any],
    manifest_items: Iterable[dict[str, Any]],
    chunk_bytes: int,
) -> Iterator[bytes]:
    """Yield the zip of `entries`, then of a JSON manifest, in pieces of about `chunk_bytes`.

    The manifest is `manifest_head` with one more key, `images`: the list of
    `manifest_items`, written one item (one line) at a time.
    """
    pieces = _Pieces()
    date_time = time.localtime()
    with zipfile.ZipFile(pieces, "w") as archive:
        for entry in entries:
            with _opened(entry.source) as (size, read):
                target = archive.open(_info(entry.name, size, entry.compress, date_time), "w")
                with target:
                    while data := read(chunk_bytes):
                        target.write(data)
                        if pieces.size >= chunk_bytes:
                            yield pieces.take()
        manifest = _info(manifest_name, 0, True, date_time)
        with archive.open(manifest, "w") as target:
            head = orjson.dumps(manifest_head)[:-1] + b"," * bool(manifest_head)
            target.write(head + b'"images":[\n')
            for number, item in enumerate(manifest_items):
                target.write(b",\n" * (number > 0) + orjson.dumps(item))
                if pieces.size >= chunk_bytes:
                    yield pieces.take()
            target.write(b"\n]}\n")
    yield pieces.take()
