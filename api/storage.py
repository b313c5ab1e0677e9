"""Image files on disk: one directory per workload, written to a temp name then renamed.

The root and every workload directory are 0700 (files 0600, from `mkstemp`), like the data
dir: a workload directory's name holds the workload's name, which other local users should
not be able to list.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from api.errors import APIError

KINDS = ("original", "filtered")
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
PRIVATE_DIR_MODE = 0o700


class ImageStore:
    """Paths and atomic writes under the images root."""

    def __init__(self, root: Path) -> None:
        """Create the root if needed, and make it and the directories in it private.

        Directories made by earlier versions were 0755; this closes them at start.
        """
        self.root = root
        root.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        workload_dirs = (c for c in root.iterdir() if c.is_dir() and not c.is_symlink())
        for directory in (root, *workload_dirs):
            directory.chmod(PRIVATE_DIR_MODE)

    def path(self, dir_name: str, number: int, kind: str, extension: str) -> Path:
        return self.root / dir_name / f"{number}.{kind}.{extension}"

    def write_temp(self, dir_name: str, data: bytes) -> Path:
        """Write `data` to a hidden temp file in the workload's directory and return its path."""
        directory = self.root / dir_name
        try:
            try:
                fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".tmp")
            except FileNotFoundError:  # the workload's first image: make its directory
                directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".tmp")
        except OSError as e:
            raise storage_error(e) from e
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as e:
            Path(name).unlink(missing_ok=True)
            raise storage_error(e) from e
        return Path(name)

    @contextmanager
    def staged(self, dir_name: str, data: bytes) -> Iterator[Callable[[Path], None]]:
        """Write `data` to a temp file and yield the function that renames it into place.

        Call that function inside the datastore transaction that records the file, so the
        file and its row appear together; a temp file never renamed is removed on exit.
        """
        temp = self.write_temp(dir_name, data)

        def put(final: Path) -> None:
            try:
                os.replace(temp, final)
            except OSError as e:
                raise storage_error(e) from e

        try:
            yield put
        finally:
            temp.unlink(missing_ok=True)

    def remove_workload(self, dir_name: str) -> None:
        directory = self.root / dir_name
        if directory.is_dir():
            for child in directory.iterdir():
                child.unlink(missing_ok=True)
            directory.rmdir()


def storage_error(e: OSError) -> APIError:
    if e.errno in _NO_SPACE:
        return APIError(507, "insufficient_storage", "the image store is full; try again later")
    return APIError(500, "storage_error", f"the image store failed: {e.strerror}")
