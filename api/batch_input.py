"""A batch upload's body: spooled to disk as it arrives, then listed and read one image at a time.

`POST /workloads/{id}/images` takes a multipart form with one file part `data` per image, or a
zip or tar body whose members are the images (directories skipped). The body goes to the image
store's scratch file as it comes, under the batch's byte limit, never whole in memory; then
its structure is checked before any image is read: the count, each member's kind and declared
size, and for archives what their readers would load whole (a zip's central directory, a tar's
extended headers). Only then are the images read, one at a time, each at most the
single-upload limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from api.batch_archives import tar_members, zip_members
from api.batch_members import (
    BatchLimits,
    Member,
    bad_batch,
    member_error,
    too_many_bytes,
    too_many_images,
)
from api.errors import APIError
from api.inputs import client_filename

BODY_CHUNK_BYTES = 256 * 1024  # one read of the body
MULTIPART_BUFFER_BYTES = 1024 * 1024  # a part's head (or the preamble) may be this long
ZIP_MEDIA_TYPE = "application/zip"
TAR_MEDIA_TYPE = "application/x-tar"
MULTIPART_MEDIA_TYPE = "multipart/form-data"
IMAGE_FIELD = "data"


@contextmanager
def batch_members(spool: BinaryIO, limits: BatchLimits) -> Iterator[list[Member]]:
    """Spool the request's body into `spool` and list its images in the order sent, once
    its structure and limits are checked; the members are readable until the block ends.

    Raises APIError: 413 past the limits, 415 for another body type, 400 when the body is
    not what its type says or a member is not a plain file within the limits.
    """
    request.max_content_length = limits.max_bytes  # this request's, instead of a single upload's
    mimetype = request.mimetype
    if mimetype == MULTIPART_MEDIA_TYPE:
        with _body_limit(limits):
            members = _multipart_members(spool, limits)
        yield members
    elif mimetype in (ZIP_MEDIA_TYPE, TAR_MEDIA_TYPE):
        with _body_limit(limits):
            _copy_body(spool)
        open_members = zip_members if mimetype == ZIP_MEDIA_TYPE else tar_members
        with open_members(spool, limits) as members:
            yield members
    else:
        raise APIError(
            415,
            "unsupported_media_type",
            f"send a batch as {MULTIPART_MEDIA_TYPE} (one file part '{IMAGE_FIELD}' per image),"
            f" {ZIP_MEDIA_TYPE} or {TAR_MEDIA_TYPE}, not {mimetype or 'no Content-Type'}",
        )


@contextmanager
def _body_limit(limits: BatchLimits) -> Iterator[None]:
    """Answer a body over the batch's byte limit with a 413 that says the limit."""
    try:
        yield
    except RequestEntityTooLarge as e:
        raise too_many_bytes(limits) from e


def _write_all(spool: BinaryIO, data: bytes | memoryview) -> None:
    while data:
        data = data[spool.write(data) :]


def _copy_body(spool: BinaryIO) -> None:
    buffer = memoryview(bytearray(BODY_CHUNK_BYTES))
    stream = request.stream
    while count := stream.readinto(buffer):
        _write_all(spool, buffer[:count])


def _read_range(spool: BinaryIO, offset: int, size: int) -> bytes:
    spool.seek(offset)
    data = bytearray()
    while len(data) < size and (chunk := spool.read(size - len(data))):
        data += chunk
    return bytes(data)


def _multipart_members(spool: BinaryIO, limits: BatchLimits) -> list[Member]:
    """Decode the form as it arrives (Werkzeug's streaming decoder), each image part's bytes
    appended to the spool: one file however many parts, each bounded as it comes in."""
    boundary = request.mimetype_params.get("boundary")
    if not boundary:
        raise bad_batch("the multipart Content-Type has no boundary")
    decoder = MultipartDecoder(boundary.encode(), max_form_memory_size=MULTIPART_BUFFER_BYTES)
    parts: list[tuple[str | None, int]] = []  # (filename, offset in the spool)
    sizes: list[int] = []
    stream = request.stream
    finished = False
    while not finished:
        chunk = stream.read(BODY_CHUNK_BYTES)
        try:
            decoder.receive_data(chunk or None)
            while not isinstance(event := decoder.next_event(), NeedData):
                if isinstance(event, File) and event.name == IMAGE_FIELD:
                    if len(parts) == limits.max_images:
                        raise too_many_images(limits)
                    filename = client_filename(event.filename, limits.max_filename_chars)
                    parts.append((filename, spool.tell()))
                    sizes.append(0)
                elif isinstance(event, Field | File):
                    raise bad_batch(
                        f"unexpected form field {event.name!r}: the workload is in the URL;"
                        f" send each image as a file part named {IMAGE_FIELD!r}"
                    )
                elif isinstance(event, Data) and parts:
                    sizes[-1] += len(event.data)
                    if sizes[-1] > limits.max_image_bytes:
                        raise member_error(
                            len(parts) - 1,
                            parts[-1][0],
                            f"is over {limits.max_image_bytes} bytes, the limit of one image",
                            "image_too_large",
                        )
                    _write_all(spool, event.data)
                elif isinstance(event, Epilogue):
                    finished = True
                    break
        except RequestEntityTooLarge as e:  # the decoder's own buffer, not the body
            raise bad_batch(
                f"a part's headers (or the preamble) run past {MULTIPART_BUFFER_BYTES} bytes"
            ) from e
        except ValueError as e:  # malformed, or cut short
            raise bad_batch(f"the multipart body cannot be read: {e}") from e
    return [
        Member(index, filename, partial(_read_range, spool, offset, size))
        for index, ((filename, offset), size) in enumerate(zip(parts, sizes, strict=True))
    ]
