"""The image store in a local directory: one directory per workload, renames for atomicity.

The root and every workload directory are 0700 (files 0600, from `mkstemp`), like the data
dir: a workload directory's name holds the workload's name, which other local users should
not be able to list.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imagestore.errors import ImageMissing, ImageStoreError, StoreFull
from imagestore.store import ByteStream, ImageName, ImageStore, StagedImage

PRIVATE_DIR_MODE = 0o700
TEMP_PREFIX = ".upload-"  # staged files are hidden and never parse as an image name
COPY_CHUNK_BYTES = 1024 * 1024
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


@contextmanager
def _os_errors() -> Iterator[None]:
    """Turn the file system's errors into the store's own."""
    try:
        yield
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise StoreFull("the image store is full; try again later") from e
        raise ImageStoreError(f"the image store failed: {e.strerror}") from e


def _copy(stream: ByteStream, fd: int) -> None:
    """Copy through one reused buffer (a fresh chunk per read made 50 MB 2-3x slower).

    Unbuffered, so no write is left for a close to fail on. Only the writes are the
    store's errors: a failing read is the stream's own.
    """
    if isinstance(stream, io.BytesIO):  # in memory already: written as it is, no buffer
        _write_all(stream.getbuffer()[stream.tell() :], fd)
        return
    buffer = memoryview(bytearray(COPY_CHUNK_BYTES))
    while count := stream.readinto(buffer):
        _write_all(buffer[:count], fd)


def _write_all(chunk: memoryview, fd: int) -> None:
    with _os_errors():
        while chunk:
            chunk = chunk[os.write(fd, chunk) :]


def _create_temp(directory: Path) -> tuple[int, Path]:
    """Create a hidden temp file (0600) in `directory`, making the directory (0700) if new."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=".tmp")
    except FileNotFoundError:  # the workload's first image
        directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=".tmp")
    return fd, Path(name)


@contextmanager
def scratch_file(directory: Path) -> Iterator[BinaryIO]:
    """A hidden temp file in `directory` (made 0700 if new), unlinked at once: nothing is
    left behind, even by a killed process."""
    with _os_errors():
        fd, temp = _create_temp(directory)
    with ScratchFile(fd, "r+b") as file:
        with _os_errors():
            temp.unlink()
        yield file


class ScratchFile(io.FileIO):
    """A temporary file whose writes raise the store's errors (a full disk is StoreFull)."""

    def write(self, data) -> int:
        with _os_errors():
            return super().write(data)


@dataclass(frozen=True)
class LocalStagedImage(StagedImage):
    """A temp file in the workload's directory, renamed into place on commit."""

    temp: Path

    def commit(self, name: ImageName) -> None:
        with _os_errors():
            os.replace(self.temp, self.temp.parent / name.file_name)

    def discard(self) -> None:
        with _os_errors():
            self.temp.unlink(missing_ok=True)


class LocalImageStore(ImageStore):
    """Image files under a root directory on this host."""

    def __init__(self, root: Path) -> None:
        """Create the root if needed, and make it and the directories in it private.

        Directories made by earlier versions were 0755; this closes them at start.
        """
        self.root = root
        root.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        workload_dirs = (c for c in root.iterdir() if c.is_dir() and not c.is_symlink())
        for directory in (root, *workload_dirs):
            directory.chmod(PRIVATE_DIR_MODE)

    def path(self, workload_dir: str, name: ImageName) -> Path:
        return self.root / workload_dir / name.file_name

    def put(self, workload_dir: str, stream: ByteStream) -> LocalStagedImage:
        with _os_errors():
            fd, temp = _create_temp(self.root / workload_dir)
        try:
            try:
                _copy(stream, fd)
            finally:
                os.close(fd)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return LocalStagedImage(temp)

    def scratch(self, workload_dir: str) -> AbstractContextManager[BinaryIO]:
        """A scratch file in the workload's directory, on the images' disk."""
        return scratch_file(self.root / workload_dir)

    def open(self, workload_dir: str, name: ImageName) -> Path:
        path = self.path(workload_dir, name)
        if not path.is_file():
            raise ImageMissing(f"the {name.kind} file of image {name.number} is missing")
        return path

    def list_workload(self, workload_dir: str) -> list[ImageName]:
        directory = self.root / workload_dir
        if not directory.is_dir():
            return []
        with _os_errors():
            file_names = os.listdir(directory)
        return sorted(n for n in map(ImageName.parse, file_names) if n is not None)

    def delete_workload(self, workload_dir: str) -> None:
        directory = self.root / workload_dir
        with _os_errors():
            if not directory.is_dir():
                return
            for child in directory.iterdir():
                child.unlink(missing_ok=True)
            directory.rmdir()
