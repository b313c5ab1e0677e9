"""The image store in an S3-compatible object store: one key prefix per workload.

S3 has no rename: a staged image is uploaded under a hidden temporary key, and its commit
copies it to the image's key (a server-side copy, whole or not at all) and deletes the
temporary one. Readers only ever see whole images. A request's scratch file stays on local
disk: it is working data, never an image.
"""

from __future__ import annotations

import tempfile
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from imagestore.errors import ImageMissing, ImageStoreError
from imagestore.local import TEMP_PREFIX, ScratchFile
from imagestore.store import ByteStream, ImageName, ImageStore, StagedImage

DELETE_BATCH = 1000  # S3's most keys per DeleteObjects


class _Reader:
    """A ByteStream as the file object boto3's upload reads (`read(n)`)."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size > 0 else 1024 * 1024)
        count = self._stream.readinto(memoryview(buffer)) or 0
        return bytes(buffer[:count])


def _store_errors(action: str, e: Exception) -> ImageStoreError:
    return ImageStoreError(f"the image store failed to {action}: {e}")


class S3StagedImage(StagedImage):
    def __init__(self, store: S3ImageStore, workload_dir: str, temp_key: str) -> None:
        self._store = store
        self._workload_dir = workload_dir
        self._temp_key: str | None = temp_key

    def commit(self, name: ImageName) -> None:
        if self._temp_key is None:
            raise ImageStoreError("a staged image is committed once")
        key = self._store.key(self._workload_dir, name.file_name)
        source = {"Bucket": self._store.bucket, "Key": self._temp_key}
        try:
            self._store.client.copy_object(Bucket=self._store.bucket, Key=key, CopySource=source)
        except (BotoCoreError, ClientError) as e:
            raise _store_errors("commit an image", e) from e
        self.discard()

    def discard(self) -> None:
        if self._temp_key is None:
            return
        temp_key, self._temp_key = self._temp_key, None
        try:
            self._store.client.delete_object(Bucket=self._store.bucket, Key=temp_key)
        except (BotoCoreError, ClientError) as e:
            raise _store_errors("discard a staged image", e) from e


class S3ImageStore(ImageStore):
    """Images under `prefix` in `bucket`, through a boto3 S3 `client`; scratch files in
    `scratch_dir` on local disk."""

    def __init__(self, client: Any, bucket: str, prefix: str, scratch_dir: Path) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.scratch_dir = scratch_dir

    def key(self, workload_dir: str, file_name: str) -> str:
        return f"{self.prefix}{workload_dir}/{file_name}"

    def put(self, workload_dir: str, stream: ByteStream) -> S3StagedImage:
        temp_key = self.key(workload_dir, f"{TEMP_PREFIX}{uuid.uuid4().hex}.tmp")
        try:
            self.client.upload_fileobj(_Reader(stream), self.bucket, temp_key)
        except (BotoCoreError, ClientError) as e:
            raise _store_errors("store an image", e) from e
        return S3StagedImage(self, workload_dir, temp_key)

    def scratch(self, workload_dir: str) -> AbstractContextManager[BinaryIO]:
        self.scratch_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.scratch_dir, prefix=TEMP_PREFIX, suffix=".tmp")
        Path(name).unlink()  # unnamed: gone with the process, whatever happens
        return ScratchFile(fd, "w+b")  # type: ignore[return-value]

    def open(self, workload_dir: str, name: ImageName) -> BinaryIO:
        try:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=self.key(workload_dir, name.file_name)
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ImageMissing(f"the {name.kind} file of image {name.number} is missing") from e
            raise _store_errors("read an image", e) from e
        except BotoCoreError as e:
            raise _store_errors("read an image", e) from e
        return answer["Body"]

    def _keys(self, workload_dir: str) -> list[str]:
        prefix = self.key(workload_dir, "")
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys += [item["Key"] for item in page.get("Contents", ())]
        except (BotoCoreError, ClientError) as e:
            raise _store_errors("list a workload's images", e) from e
        return keys

    def list_workload(self, workload_dir: str) -> list[ImageName]:
        names = (ImageName.parse(key.rsplit("/", 1)[-1]) for key in self._keys(workload_dir))
        return sorted(name for name in names if name is not None)

    def delete_workload(self, workload_dir: str) -> None:
        keys = self._keys(workload_dir)
        try:
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
        except (BotoCoreError, ClientError) as e:
            raise _store_errors("delete a workload's images", e) from e
