"""Read a batch's zip or tar from its scratch file: its structure checked before any image is
read, then each image read on demand.

The stdlib reads both, bounded first where it would load something the body controls whole:
a zip's central directory (its size is read from the end record, as zipfile reads it), a
tar's extended headers (one budget, charged before tarfile reads each), sparse tar members
(refused). Members are read no further than their declared size.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO

from api.batch_members import (
    BatchLimits,
    Member,
    bad_batch,
    member_error,
    too_many_bytes,
    too_many_images,
)
from api.inputs import client_filename
from foundation import defaults
from foundation.errors import DPIPError

ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
TAR_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)
TAR_EXTENDED_HEADERS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
TAR_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
}


def _zip_directory(spool: BinaryIO) -> tuple[int, int]:
    """The entry count and byte size of the zip's central directory, read the way zipfile
    reads them (zip64 records included) before it loads the whole directory into memory."""
    try:
        end = zipfile._EndRecData(spool)
    except (OSError, zipfile.BadZipFile) as e:
        raise bad_batch(f"the body is not a readable zip: {e}") from e
    if not end:
        raise bad_batch("the body is not a zip (no end of central directory record)")
    return end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]


def _zip_entry_problem(
    info: zipfile.ZipInfo, spool_size: int, limits: BatchLimits
) -> tuple[str, str] | None:
    """Why a zip entry cannot be an image, before any of its bytes is read: (problem, code)."""
    if not 0 <= info.header_offset < spool_size:
        return "has a header outside the zip", "invalid_batch"
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type not in (0, stat.S_IFREG):
        return "is a link or a special file, not a regular file", "invalid_batch"
    if info.flag_bits & 0x1:
        return "is encrypted", "invalid_batch"
    if info.compress_type not in ZIP_METHODS:
        methods = " or ".join(ZIP_METHODS.values())
        return f"uses compression method {info.compress_type}; send {methods}", "invalid_batch"
    if info.file_size > limits.max_image_bytes:
        return (
            f"inflates to {info.file_size} bytes, over {limits.max_image_bytes}, the limit of"
            " one image",
            "image_too_large",
        )
    return None


def _read_zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, index: int, filename: str | None
) -> bytes:
    """The entry's bytes, no more than its declared size, its CRC checked.

    `read()` without a size would inflate a whole deflate block at once (zipfile asks zlib for
    up to 2 GiB), however small the declared size; `read(size)` asks for that much only.
    """
    try:
        with archive.open(info) as entry:
            return entry.read(info.file_size)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as e:
        # NotImplementedError: flags of its local header zipfile does not read (patched data)
        raise member_error(index, filename, f"cannot be read from the zip: {e}") from e


@contextmanager
def zip_members(spool: BinaryIO, limits: BatchLimits) -> Iterator[list[Member]]:
    entries, directory_bytes = _zip_directory(spool)
    spool_size = spool.seek(0, os.SEEK_END)
    if entries > limits.max_entries:
        raise too_many_images(limits)
    directory_budget = max(entries, 1) * defaults.ARCHIVE_METADATA_BYTES_PER_ENTRY
    if directory_bytes > directory_budget:
        raise bad_batch(
            f"the zip's central directory is {directory_bytes} bytes, over the"
            f" {directory_budget} its {entries} entries may take"
        )
    try:
        archive = zipfile.ZipFile(spool)
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as e:
        # NotImplementedError: an entry needs a later zip version than zipfile reads
        raise bad_batch(f"the body is not a readable zip: {e}") from e
    with archive:
        # not ZipInfo.is_dir(), which fails on an empty name
        infos = [info for info in archive.infolist() if not info.filename.endswith("/")]
        if len(infos) > limits.max_images:
            raise too_many_images(limits)
        if sum(info.file_size for info in infos) > limits.max_bytes:
            raise too_many_bytes(limits)
        members = []
        for index, info in enumerate(infos):
            filename = client_filename(info.filename, limits.max_filename_chars)
            if problem := _zip_entry_problem(info, spool_size, limits):
                raise member_error(index, filename, *problem)
            read = partial(_read_zip_entry, archive, info, index, filename)
            members.append(Member(index, filename, read))
        yield members


class TarHeaderRefused(DPIPError):
    """Raised when a tar header asks its reader for more than a batch allows."""


class _GuardedTarInfo(tarfile.TarInfo):
    """tarfile's member header, refusing before they are read: extended headers past the
    budget, and sparse members (their maps are read whole, and may be as long as the body)."""

    def _proc_member(self, archive: _GuardedTarFile):  # tarfile's documented extension point
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise TarHeaderRefused("a sparse member")
        if self.type in TAR_EXTENDED_HEADERS:
            archive.metadata_budget -= tarfile.BLOCKSIZE + self.size
            if archive.metadata_budget < 0:
                raise TarHeaderRefused("extended headers (pax, long names) over the budget")
            position = archive.fileobj.tell()
            if b"GNU.sparse" in archive.fileobj.read(self.size):
                raise TarHeaderRefused("a sparse member")
            archive.fileobj.seek(position)
        return super()._proc_member(archive)


class _GuardedTarFile(tarfile.TarFile):
    """tarfile's reader of uncompressed tars, counting what it loads whole: extended headers
    are read into memory before the member they describe, so they share one budget."""

    tarinfo = _GuardedTarInfo

    def __init__(self, fileobj: BinaryIO, metadata_budget: int) -> None:
        self.metadata_budget = metadata_budget  # bytes of extended headers still allowed
        super().__init__(fileobj=fileobj, mode="r")  # reads the first header


def _tar_headers(archive: _GuardedTarFile, limits: BatchLimits) -> Iterator[tarfile.TarInfo]:
    """The tar's entries, counted as they are read (a body of empty headers stops at once)."""
    for count in range(limits.max_entries + 1):
        try:
            info = archive.next()
        except (tarfile.TarError, TarHeaderRefused, RecursionError, ValueError) as e:
            raise bad_batch(f"the tar cannot be read after {count} entries: {e}") from e
        if info is None:
            return
        if count == limits.max_entries:
            raise too_many_images(limits)
        yield info


def _check_tar_end(spool: BinaryIO, offset: int) -> None:
    """tarfile stops silently at a damaged header past the first; the rest must be zeros."""
    spool.seek(offset)
    if spool.read(tarfile.BLOCKSIZE).strip(b"\0"):
        raise bad_batch(f"the tar has a damaged header at byte {offset}")


def _read_tar_entry(
    archive: tarfile.TarFile, info: tarfile.TarInfo, index: int, filename: str | None
) -> bytes:
    try:
        with archive.extractfile(info) as entry:
            return entry.read()
    except tarfile.TarError as e:
        raise member_error(index, filename, f"cannot be read from the tar: {e}") from e


@contextmanager
def tar_members(spool: BinaryIO, limits: BatchLimits) -> Iterator[list[Member]]:
    spool.seek(0)
    try:
        archive = _GuardedTarFile(spool, limits.max_archive_metadata_bytes)
    except (tarfile.TarError, TarHeaderRefused, RecursionError, ValueError) as e:
        raise bad_batch(f"the body is not a readable tar: {e}") from e
    with archive:
        members = []
        for info in _tar_headers(archive, limits):
            if info.isdir():
                continue
            index = len(members)
            if index == limits.max_images:
                raise too_many_images(limits)
            filename = client_filename(info.name, limits.max_filename_chars)
            if info.type not in TAR_FILE_TYPES:
                kind = TAR_KINDS.get(info.type, f"of tar type {info.type!r}")
                raise member_error(index, filename, f"is {kind}, not a regular file")
            if info.size > limits.max_image_bytes:
                raise member_error(
                    index,
                    filename,
                    f"is {info.size} bytes, over {limits.max_image_bytes}, the limit of one image",
                    "image_too_large",
                )
            read = partial(_read_tar_entry, archive, info, index, filename)
            members.append(Member(index, filename, read))
        _check_tar_end(spool, archive.offset)
        yield members
