"""`Client`: DPIP's REST API as Python calls with typed answers and the client's errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from client import defaults
from client.archive import download_archive
from client.errors import UnexpectedAnswer, WaitTimedOut
from client.files import written_whole
from client.models import (
    ImageInfo,
    Manifest,
    Status,
    UploadedImage,
    User,
    Worker,
    Workload,
    decode,
)
from client.retries import RetryPolicy
from client.transport import DEFAULT_TIMEOUT, Timeout, Transport
from client.uploads import MultipartForm, UploadItem, UploadPart, as_part, in_batches, send_in_order

RAW_IMAGE_HEADERS = {"Content-Type": "application/octet-stream"}
ARCHIVE_TYPES = {"zip": "application/zip", "tar": "application/x-tar"}


def _users(body: Any) -> tuple[User, ...]:
    return tuple(map(User.from_json, body["users"]))


def _login_answer(body: Any) -> tuple[str, User]:
    return str(body["token"]), User(str(body["user"]), str(body["role"]))


def _uploaded(body: Any) -> list[UploadedImage]:
    return [UploadedImage.from_json(image) for image in body["images"]]


def _page(body: Any) -> tuple[int, list[ImageInfo]]:
    return int(body["total"]), [ImageInfo.from_json(image) for image in body["images"]]


class Client:
    """One DPIP system, reached at `url` (`http://host:8080`), as one user.

    Every request has `timeout` (seconds, or (to connect, of silence)); requests that fail
    on the way are resent as `retry` allows (see `client.retries`): a GET after a broken
    connection or a 503, any request whose connection was refused. A 429 raises
    RateLimited unless `wait_on_rate_limit`, which waits its Retry-After within the
    policy's total time. Uploads send up to `upload_threads` batches at once. Use it from
    any number of threads; each has its own connections. `close()` (or a `with` block)
    closes them.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        *,
        retry: RetryPolicy | None = None,
        wait_on_rate_limit: bool = False,
        upload_threads: int = defaults.UPLOAD_THREADS,
    ) -> None:
        self._transport = Transport(url, token, timeout, retry, wait_on_rate_limit)
        self.upload_threads = upload_threads
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the upload threads and close every connection."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._transport.close()

    @property
    def url(self) -> str:
        return self._transport.url

    @property
    def token(self) -> str | None:
        """The token sent with each request: given, or set by `login`."""
        return self._transport.token

    @token.setter
    def token(self, token: str | None) -> None:
        self._transport.token = token

    # Session

    def login(self, user: str, password: str) -> User:
        """Log in; later calls use the new token (valid one hour by default)."""
        body = self._transport.json("POST", "/login", json={"username": user, "password": password})
        self.token, user = decode(_login_answer, body)
        return user

    def logout(self) -> None:
        """Revoke the token for good, and forget it."""
        self._transport.request("DELETE", "/logout")
        self.token = None

    # The system

    def status(self) -> Status:
        """The caller's active workloads and every worker known to the cluster."""
        return decode(Status.from_json, self._transport.json("GET", "/status"))

    def workers(self) -> tuple[Worker, ...]:
        return self.status().workers

    # Workloads

    def create_workload(
        self,
        name: str | None = None,
        filter: str = "grayscale",
        radius: float | None = None,
        tags: Iterable[str] = (),
    ) -> Workload:
        """Create a workload; the API names it when `name` is None."""
        fields: dict[str, Any] = {"filter": filter, "tags": list(tags)}
        if name is not None:
            fields["workload_name"] = name
        if radius is not None:
            fields["radius"] = radius
        return decode(Workload.from_json, self._transport.json("POST", "/workloads", json=fields))

    def workloads(self) -> tuple[Workload, ...]:
        """The caller's workloads (every user's for admins), oldest first, without lists."""
        body = self._transport.json("GET", "/workloads")
        return decode(lambda body: tuple(map(Workload.from_json, body["workloads"])), body)

    def delete_workload(self, workload_id: int) -> None:
        """Delete a workload with its images, results and jobs."""
        self._transport.request("DELETE", f"/workloads/{workload_id}")

    def workload(
        self, workload_id: int, *, wait: float | None = None, seen: int | None = None
    ) -> Workload:
        """The workload now; with `wait` (seconds), once more than `seen` of its images are
        finished, or the wait ran out, or at once if already so (one step of the long poll)."""
        params: dict[str, Any] = {}
        timeout = None
        if wait is not None:
            params["wait"] = f"{wait:.3f}"
            connect_s, read_s = self._transport.timeout
            timeout = (connect_s, read_s + wait)
        if seen is not None:
            params["seen"] = seen
        body = self._transport.json(
            "GET", f"/workloads/{workload_id}", params=params or None, timeout=timeout
        )
        return decode(Workload.from_json, body)

    def wait(
        self,
        workload_id: int,
        timeout: float | None = None,
        on_progress: Callable[[Workload], None] | None = None,
    ) -> Workload:
        """Wait until the workload is completed and answer it; raise WaitTimedOut after
        `timeout` seconds (None: no limit). `on_progress` gets the workload first and then
        each time more of its images are finished.

        Each request asks the API to answer as soon as more images are finished than seen
        (the long poll), so waiting costs one request per change, or per 8 s. A workload
        without images is never completed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: int | None = None
        while True:
            remaining_s = defaults.WAIT_MAX_S if deadline is None else deadline - time.monotonic()
            wait_s = max(0.0, min(defaults.WAIT_MAX_S, remaining_s))
            asked = time.monotonic()
            workload = self.workload(workload_id, wait=wait_s, seen=seen)
            news = workload.images.finished != seen
            if news and on_progress is not None:
                on_progress(workload)
            seen = workload.images.finished
            if workload.is_completed:
                return workload
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(workload, timeout or 0.0)
            if not news and time.monotonic() - asked < wait_s / 2:
                # The API was too busy to wait (it lets half its threads wait at once).
                time.sleep(min(defaults.WAIT_BUSY_PAUSE_S, max(0.0, remaining_s)))

    # Images

    def upload(
        self,
        workload_id: int,
        items: Iterable[UploadItem],
        batch: int = defaults.UPLOAD_BATCH_IMAGES,
        *,
        in_flight: int | None = None,
        on_batch: Callable[[list[UploadedImage]], None] | None = None,
    ) -> list[UploadedImage]:
        """Upload images in batches of `batch` (`POST /workloads/{id}/images`), up to
        `in_flight` batches at once (default: `upload_threads`), and answer each image's
        number and kept filename in the order of `items`.

        An item is a path (its name is kept), bytes (no name), or (filename, bytes or
        path). Every path is checked before the first request; files are read as they are
        sent, never whole. Each batch is stored whole or not at all; batches in flight at
        once are numbered in the order they arrive, so pass `in_flight=1` when the numbers
        must follow `items`. `on_batch` gets each stored batch's images as it is answered.
        On a failure no further batch starts and the failure is raised once the batches in
        flight are answered.
        """
        parts = [as_part(item) for item in items]
        path = f"/workloads/{workload_id}/images"

        def send(batch_parts: Sequence[UploadPart]) -> list[UploadedImage]:
            form = MultipartForm(batch_parts)
            headers = {"Content-Type": form.content_type}
            uploaded = decode(
                _uploaded, self._transport.json("POST", path, data=form, headers=headers)
            )
            if len(uploaded) != len(batch_parts):
                raise UnexpectedAnswer(f"{len(batch_parts)} images sent, {len(uploaded)} stored")
            return uploaded

        return send_in_order(
            in_batches(parts, batch),
            send,
            self._upload_executor(),
            in_flight or self.upload_threads,
            on_batch,
        )

    def upload_image(
        self, workload_id: int, image: bytes | str | Path, filename: str | None = None
    ) -> UploadedImage:
        """Upload one image with `POST /images`, its bytes as the body (the cheapest upload
        for the API); a path's name is kept unless `filename` is given."""
        part = as_part(image if filename is None else (filename, image))
        params: dict[str, Any] = {"workload_id": workload_id}
        if part.filename is not None:
            params["filename"] = part.filename
        answer = self._transport.json(
            "POST", "/images", params=params, data=part.body(), headers=RAW_IMAGE_HEADERS
        )
        return UploadedImage(decode(lambda body: int(body["image_id"]), answer), part.filename)

    def upload_archive(
        self, workload_id: int, archive: bytes | str | Path, kind: str | None = None
    ) -> list[UploadedImage]:
        """Upload a zip or a tar of images as one batch, as it is; `kind` (`zip` or `tar`)
        is read from a path's suffix when not given. Answers the images in member order."""
        if kind is None and not isinstance(archive, bytes):
            kind = Path(archive).suffix.lstrip(".").lower()
        if kind not in ARCHIVE_TYPES:
            raise ValueError(f"an archive is a zip or a tar, not {kind!r}")
        part = as_part(("archive", archive))
        answer = self._transport.json(
            "POST",
            f"/workloads/{workload_id}/images",
            data=part.body(),
            headers={"Content-Type": ARCHIVE_TYPES[kind]},
        )
        return decode(_uploaded, answer)

    def _upload_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.upload_threads, thread_name_prefix="dpip-upload"
                )
            return self._executor

    def images(
        self, workload_id: int, status: str | None = None, page_size: int | None = None
    ) -> Iterator[ImageInfo]:
        """Every image of the workload in number order, or those in `status` (queued,
        running, done, failed), fetched a page at a time (`page_size`, default the API's).
        With `status`, images that change status meanwhile may be skipped or repeated."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset}
            if status is not None:
                params["status"] = status
            if page_size is not None:
                params["limit"] = page_size
            body = self._transport.json("GET", f"/workloads/{workload_id}/images", params=params)
            total, page = decode(_page, body)
            yield from page
            offset += len(page)
            if not page or offset >= total:
                return

    def download(self, workload_id: int, number: int, type: str = "filtered") -> bytes:
        """Image `number`'s result (`type="filtered"`) or original, as bytes."""
        params = {"workload_id": workload_id, "type": type}
        return self._transport.request("GET", f"/images/{number}", params=params).data

    def download_to(
        self, workload_id: int, number: int, path: str | Path, type: str = "filtered"
    ) -> int:
        """Stream image `number` into the file `path` (which appears only once complete);
        answer its size in bytes."""
        params = {"workload_id": workload_id, "type": type}
        with written_whole(Path(path)) as file:
            return self._transport.download(f"/images/{number}", file, params=params)

    def download_archive(self, workload_id: int, sink: BinaryIO, type: str = "filtered") -> int:
        """Stream the workload's archive (a zip, `manifest.json` last) into `sink` as it
        arrives, unread; answer its size in bytes. `download_all` unpacks it instead."""
        path = f"/workloads/{workload_id}/archive"
        return self._transport.download(path, sink, params={"type": type})

    def download_all(
        self, workload_id: int, out_dir: str | Path, type: str = "filtered"
    ) -> Manifest:
        """Download the workload's archive into `out_dir` (`000042.png`, ... and
        `manifest.json`, replacing files of those names) and answer its manifest. The
        archive holds the results ready when it was asked for (`type="filtered"`) or every
        original; it goes to disk as it arrives, never whole in memory."""
        return download_archive(self._transport, workload_id, Path(out_dir), type)

    # Users (admins; users may read and change only themselves)

    def users(self) -> tuple[User, ...]:
        return decode(_users, self._transport.json("GET", "/users"))

    def create_user(self, username: str, password: str, role: str = "user") -> User:
        fields = {"username": username, "password": password, "role": role}
        return decode(User.from_json, self._transport.json("POST", "/users", json=fields))

    def user(self, username: str) -> User:
        return decode(User.from_json, self._transport.json("GET", _user_path(username)))

    def update_user(
        self,
        username: str,
        *,
        password: str | None = None,
        role: str | None = None,
        current_password: str | None = None,
    ) -> User:
        """Change a password and/or a role. Changing your own password needs
        `current_password` and revokes every token you had: the client takes the new one
        the API answers."""
        fields = {"password": password, "role": role, "current_password": current_password}
        sent = {name: value for name, value in fields.items() if value is not None}
        body = self._transport.json("PATCH", _user_path(username), json=sent)
        if isinstance(body, dict) and "token" in body:
            self.token = str(body["token"])
        return decode(User.from_json, body)

    def delete_user(self, username: str) -> None:
        """Delete a user with all their workloads, images and files (admins only)."""
        self._transport.request("DELETE", _user_path(username))


def _user_path(username: str) -> str:
    return f"/users/{quote(username, safe='')}"
