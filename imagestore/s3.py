"""The image store in an S3-compatible object store: one key prefix per workload.

S3 has no rename: a staged image is written under a key in `.staging/`, and its commit
copies it to the image's key (a server-side copy, whole or not at all) and deletes the
staged one. Readers only ever see whole images, and what a crash leaves staged is out of
every listing (an expiry rule on `.staging/` sweeps it; deleting the workload does too).

Workers move the bytes of their jobs themselves, through presigned URLs: a GET of the
original, a PUT of the result to a staging key of their own, which the API checks and
commits when the worker reports it. A request's scratch file stays on local disk: it is
working data, never an image.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from foundation import defaults
from imagestore.errors import ImageMissing, ImageStoreError, StoreUnreachable, UploadTooLarge
from imagestore.local import TEMP_PREFIX, scratch_file
from imagestore.store import ByteStream, DirectTransfers, ImageName, ImageStore, StagedImage

log = logging.getLogger(__name__)

URL_SCHEME = "s3"
STAGING = ".staging"  # the key prefix (under the store's) of everything not yet committed
DELETE_BATCH = 1000  # S3's most keys per DeleteObjects
READ_CHUNK_BYTES = 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def client_config() -> Config:
    """Path-style addressing (what S3-compatible servers answer on an IP or one host name),
    SigV4, and time bounds, so an unreachable store fails a request in seconds, not minutes."""
    return Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        connect_timeout=defaults.S3_CONNECT_TIMEOUT_S,
        read_timeout=defaults.S3_READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": defaults.S3_TRIES},
    )


@contextmanager
def _store_errors(action: str) -> Iterator[None]:
    """Turn boto3's errors into the store's own: unreachable (retry later), missing, failed."""
    try:
        yield
    except (ConnectionError, HTTPClientError) as e:
        raise StoreUnreachable(f"the image store cannot be reached to {action}: {e}") from e
    except ClientError as e:
        error = e.response.get("Error", {})
        if error.get("Code") in _MISSING_CODES:
            raise ImageMissing(f"the image store has no such object ({action})") from e
        if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            raise StoreUnreachable(f"the image store failed to {action}: {e}") from e
        raise ImageStoreError(f"the image store refused to {action}: {e}") from e
    except BotoCoreError as e:
        raise ImageStoreError(f"the image store failed to {action}: {e}") from e


def _read_all(stream: ByteStream) -> bytes:
    data = bytearray()
    buffer = memoryview(bytearray(READ_CHUNK_BYTES))
    while count := stream.readinto(buffer):
        data += buffer[:count]
    return bytes(data)


class StoredObject(io.RawIOBase):
    """An object's body as a readable stream that knows its size (a zip entry needs it)."""

    def __init__(self, body: Any, size: int) -> None:
        self._body = body
        self.size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _store_errors("read an image"):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3StagedImage(StagedImage):
    """An object under `.staging/`, copied to its image's key on commit and deleted on
    discard (committed or not: leaving the `with` block), so a commit inside a transaction
    that then fails can be made again."""

    def __init__(self, store: S3ImageStore, workload_dir: str, staged_key: str) -> None:
        self._store = store
        self._workload_dir = workload_dir
        self.key = staged_key
        self._discarded = False

    def commit(self, name: ImageName) -> None:
        if self._discarded:
            raise ImageStoreError("a discarded image cannot be committed")
        store = self._store
        source = {"Bucket": store.bucket, "Key": self.key}
        with _store_errors("commit an image"):
            store.client.copy_object(
                Bucket=store.bucket, Key=store.key(self._workload_dir, name), CopySource=source
            )

    def take_key(self) -> str | None:
        """The staged key, to delete, once; None if it was already taken."""
        if self._discarded:
            return None
        self._discarded = True
        return self.key

    def discard(self) -> None:
        self._store.discard_all([self])


class S3ImageStore(ImageStore, DirectTransfers):
    """Images under `prefix` in `bucket`; scratch files in `scratch_dir` on local disk.

    Without a `client`, each process makes its own from the standard AWS variables
    (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …) when it first needs one: boto3's clients
    do not survive a fork, and the API forks after it is built.
    """

    def __init__(self, bucket: str, prefix: str, scratch_dir: Path, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.scratch_dir = scratch_dir
        self._given_client = client
        self._clients: dict[int, Any] = {}
        self._clients_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, scratch_dir: Path) -> S3ImageStore:
        """The store `s3://bucket/prefix` names."""
        parts = urlsplit(url)
        if parts.scheme != URL_SCHEME or not parts.netloc:
            raise ValueError(f"an S3 image store is s3://bucket/prefix, not {url!r}")
        return cls(parts.netloc, parts.path, scratch_dir)

    @property
    def client(self) -> Any:
        if self._given_client is not None:
            return self._given_client
        pid = os.getpid()
        with self._clients_lock:
            if pid not in self._clients:
                self._clients = {pid: boto3.client("s3", config=client_config())}
            return self._clients[pid]

    def key(self, workload_dir: str, name: ImageName) -> str:
        return f"{self.prefix}{workload_dir}/{name.file_name}"

    def _staging_key(self, workload_dir: str, file_name: str) -> str:
        return f"{self.prefix}{STAGING}/{workload_dir}/{file_name}"

    def put(self, workload_dir: str, stream: ByteStream) -> S3StagedImage:
        """One PutObject of the whole image (at most an upload's bound, in memory already
        where the API calls it): boto3's managed upload costs twice the CPU on small ones."""
        staged_key = self._staging_key(workload_dir, f"{TEMP_PREFIX}{uuid.uuid4().hex}.tmp")
        body = stream.getvalue() if isinstance(stream, io.BytesIO) else _read_all(stream)
        with _store_errors("store an image"):
            self.client.put_object(Bucket=self.bucket, Key=staged_key, Body=body)
        return S3StagedImage(self, workload_dir, staged_key)

    def discard_all(self, staged: Sequence[StagedImage]) -> None:
        """Delete the staged objects in one call; if that fails, they stay under `.staging/`
        (out of every listing, swept with the workload or by an expiry rule): a request
        whose images were recorded must not fail on its cleanup."""
        keys = [image.take_key() for image in staged if isinstance(image, S3StagedImage)]
        keys = [key for key in keys if key is not None]
        try:
            self._delete_keys(keys)
        except ImageStoreError as e:
            log.warning("%d staged object(s) left under %s: %s", len(keys), STAGING, e)

    def scratch(self, workload_dir: str) -> AbstractContextManager[BinaryIO]:
        """A scratch file in `scratch_dir`, on local disk."""
        return scratch_file(self.scratch_dir)

    def open(self, workload_dir: str, name: ImageName) -> StoredObject:
        try:
            return self._get(self.key(workload_dir, name), "read an image")
        except ImageMissing as e:
            raise ImageMissing(f"the {name.kind} file of image {name.number} is missing") from e

    def _get(self, key: str, action: str) -> StoredObject:
        with _store_errors(action):
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        return StoredObject(answer["Body"], answer["ContentLength"])

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with _store_errors("list a workload's images"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys += [item["Key"] for item in page.get("Contents", ())]
        return keys

    def list_workload(self, workload_dir: str) -> list[ImageName]:
        keys = self._keys(f"{self.prefix}{workload_dir}/")
        names = (ImageName.parse(key.rsplit("/", 1)[-1]) for key in keys)
        return sorted(name for name in names if name is not None)

    def delete_workload(self, workload_dir: str) -> None:
        keys = self._keys(f"{self.prefix}{workload_dir}/")
        self._delete_keys(keys + self._keys(self._staging_key(workload_dir, "")))

    def _delete_keys(self, keys: list[str]) -> None:
        with _store_errors("delete images"):
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )

    def _presign(self, method: str, key: str, expires_s: int) -> str:
        with _store_errors("sign a transfer"):
            return self.client.generate_presigned_url(
                method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
            )

    def read_url(self, workload_dir: str, name: ImageName, expires_s: int) -> str:
        return self._presign("get_object", self.key(workload_dir, name), expires_s)

    def upload_url(self, workload_dir: str, upload_name: str, expires_s: int) -> str:
        return self._presign("put_object", self._staging_key(workload_dir, upload_name), expires_s)

    def take_upload(
        self, workload_dir: str, upload_name: str, max_bytes: int
    ) -> tuple[bytes, S3StagedImage]:
        staged = S3StagedImage(self, workload_dir, self._staging_key(workload_dir, upload_name))
        with self._get(staged.key, "read an uploaded result") as stored:
            if stored.size > max_bytes:
                staged.discard()
                raise UploadTooLarge(f"the upload is {stored.size} bytes, over {max_bytes}")
            return stored.read(), staged
