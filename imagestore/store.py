"""What every image store engine offers: staged writes, reads, listing and deletion.

A workload's images live together (a directory, or a key prefix) named by the workload's
`dir_name`; an image's name there is `<number>.<kind>.<extension>`. The local directory is
one engine, an S3 bucket the other (`imagestore.s3`), which also offers `DirectTransfers`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self


class ByteStream(Protocol):
    """What a put reads from: any binary file object (BytesIO, a file, a request body)."""

    def readinto(self, buffer: memoryview, /) -> int | None:
        """Fill `buffer` with the next bytes and return how many; 0 at the end."""


class SizedStream(Protocol):
    """What an engine without local files reads an image through: a stream knowing its size."""

    size: int

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True, order=True)
class ImageName:
    """An image's name within its workload: its number, kind and file extension."""

    number: int
    kind: str  # "original", "filtered", or "thumb" (the dashboard's thumbnails)
    extension: str

    @property
    def file_name(self) -> str:
        return f"{self.number}.{self.kind}.{self.extension}"

    @classmethod
    def parse(cls, file_name: str) -> ImageName | None:
        """The name `file_name` spells, None for anything else (a temp file, say)."""
        number, _, rest = file_name.partition(".")
        kind, _, extension = rest.partition(".")
        if not (number.isascii() and number.isdigit() and kind and extension):
            return None
        return cls(int(number), kind, extension)


class StagedImage(ABC):
    """An image written whole under a temporary name, which no reader sees.

    Commit it inside the datastore transaction that records the image, so the file and its
    row appear together; leaving the `with` block discards a staged image never committed.
    """

    @abstractmethod
    def commit(self, name: ImageName) -> None:
        """Move the staged bytes to `name` at once, replacing any image of that name."""

    @abstractmethod
    def discard(self) -> None:
        """Remove the staged bytes; once they were committed, only what staging left."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()


class ImageStore(ABC):
    """Image files, one group per workload, each written whole or not at all."""

    def discard_all(self, staged: Sequence[StagedImage]) -> None:
        """Discard each of `staged` (an engine may do it in fewer calls)."""
        for image in staged:
            image.discard()

    def staging(self) -> Staging:
        """A request's staged images, discarded together when its block ends."""
        return Staging(self)

    @abstractmethod
    def put(self, workload_dir: str, stream: ByteStream) -> StagedImage:
        """Write what `stream` holds to a temporary name in the workload and return it staged.

        The name is given at commit, since an original's number is only drawn in the
        transaction that records it.
        """

    @abstractmethod
    def scratch(self, workload_dir: str) -> AbstractContextManager[BinaryIO]:
        """Open an empty, unnamed temporary file near the workload's images, for one request's
        working data (a batch's body); it is gone when the block ends, or the process.

        Its writes raise the store's errors (StoreFull when the disk is full).
        """

    @abstractmethod
    def open(self, workload_dir: str, name: ImageName) -> Path | SizedStream:
        """Return what reads the image: its path where the engine keeps local files (the
        API serves a path with sendfile), else a stream open for reading.

        Raises ImageMissing when the store has no such image.
        """

    @abstractmethod
    def list_workload(self, workload_dir: str) -> list[ImageName]:
        """The names of the workload's images in order; none for an unknown workload."""

    @abstractmethod
    def delete_workload(self, workload_dir: str) -> None:
        """Delete every image of the workload, staged ones too; an unknown one is no error."""


class DirectTransfers(ABC):
    """An engine whose workers move a job's bytes themselves, through URLs that it signs for
    a short time: the original's read, and the result's upload to a staging name, which the
    API checks and commits when the worker reports it."""

    @abstractmethod
    def read_url(self, workload_dir: str, name: ImageName, expires_s: int) -> str:
        """A URL that reads the image, valid for `expires_s` seconds."""

    @abstractmethod
    def upload_url(self, workload_dir: str, upload_name: str, expires_s: int) -> str:
        """A URL that writes the staged upload `upload_name` (a name the API derives from the
        job, never the client's), valid for `expires_s` seconds."""

    @abstractmethod
    def take_upload(
        self, workload_dir: str, upload_name: str, max_bytes: int
    ) -> tuple[bytes, StagedImage]:
        """The uploaded bytes, to check, and the upload staged, to commit or discard.

        Raises ImageMissing when nothing was uploaded, UploadTooLarge (after discarding it)
        when it is over `max_bytes`.
        """


class Staging:
    """The images one request stages: whatever the block's outcome, each is discarded at its
    end, all in one `discard_all` (committed ones leave only what staging left)."""

    def __init__(self, store: ImageStore) -> None:
        self._store = store
        self._staged: list[StagedImage] = []

    def add(self, staged: StagedImage) -> StagedImage:
        self._staged.append(staged)
        return staged

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._store.discard_all(self._staged)
