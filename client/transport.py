"""HTTP to the API: one urllib3 pool of kept-alive connections, a timeout on every request,
resends by `client.retries`' rules, and urllib3's exceptions turned into the client's.

urllib3, not requests: a request costs the client about half the CPU (0.8 against 1.8 ms
for a small GET on the 2-core test machine), which counts where the client shares its
cores with the system, as in the benchmarks. This is the only module that imports urllib3.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import urlencode

import urllib3
import urllib3.exceptions

from client import defaults
from client.errors import (
    ApiError,
    ClientError,
    ConnectionFailed,
    RateLimited,
    RequestTimedOut,
    UnexpectedAnswer,
    error_for_answer,
)
from client.retries import Failure, RetryPolicy, may_resend

log = logging.getLogger(__name__)

Timeout = float | tuple[float, float]  # seconds: both, or (to connect, of silence)
DEFAULT_TIMEOUT = (defaults.CONNECT_TIMEOUT_S, defaults.READ_TIMEOUT_S)
Response = urllib3.BaseHTTPResponse


def classify(error: Exception) -> tuple[Failure | None, ClientError]:
    """Why a request failed (None: nothing a resend could help) and the client's exception
    for it, for an exception of urllib3."""
    if isinstance(error, urllib3.exceptions.NewConnectionError):  # refused, or no such host
        return Failure.NOT_CONNECTED, ConnectionFailed(f"the API cannot be reached: {error}")
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
        return Failure.NOT_CONNECTED, RequestTimedOut(f"no connection to the API in time: {error}")
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return Failure.READ_TIMEOUT, RequestTimedOut(f"the API did not answer in time: {error}")
    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        return Failure.CONNECTION_LOST, ConnectionFailed(f"the connection broke: {error}")
    return None, ClientError(f"the request could not be made: {error}")


@contextmanager
def mapped_exceptions() -> Iterator[None]:
    """Raise urllib3's exceptions as the client's (for body reads, which are never resent)."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise classify(e)[1] from e


def _error_of(response: Response) -> ApiError:
    """The exception for an error answer, its body read and the connection released."""
    try:
        with mapped_exceptions():
            text = response.data.decode("utf-8", "replace")
    finally:
        response.release_conn()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return error_for_answer(response.status, body, response.headers.get("Retry-After"), text)


def _failure_of(error: ApiError) -> Failure | None:
    return {503: Failure.UNAVAILABLE, 429: Failure.RATE_LIMITED}.get(error.status)


class Transport:
    """Requests to one API: its base URL and the caller's token, added to each."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        wait_on_rate_limit: bool = False,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the API's URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = _pair(timeout)
        self.retry = retry or RetryPolicy()
        self.wait_on_rate_limit = wait_on_rate_limit
        # Shared by the caller's threads (thread-safe); past `maxsize` busy at once, more
        # connections open and close after their request.
        self._pool = urllib3.PoolManager(maxsize=defaults.KEPT_CONNECTIONS, retries=False)

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: Timeout | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        """Send a request and answer its 2xx response (its body read, unless `stream`: then
        the caller reads and releases it); raise the client's exception for anything else,
        after the resends the policy allows. `data` is bytes, or a body with a length whose
        iteration starts over each time (a resend sends it whole again)."""
        url = self.url + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        sent_headers = dict(headers or {})
        if self.token:
            sent_headers["Authorization"] = f"Bearer {self.token}"
        if data is not None and not isinstance(data, bytes):
            sent_headers["Content-Length"] = str(len(data))  # sent whole, not chunked
        connect_s, read_s = _pair(timeout or self.timeout)
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            try:
                response = self._pool.request(
                    method,
                    url,
                    body=data if data is None or isinstance(data, bytes) else iter(data),
                    json=json,
                    headers=sent_headers,
                    timeout=urllib3.Timeout(connect=connect_s, read=read_s),
                    preload_content=not stream,
                    redirect=False,
                )
            except (urllib3.exceptions.HTTPError, OSError) as e:
                failure, error = classify(e)
                error.__cause__ = e
            else:
                if 200 <= response.status < 300:
                    return response
                error = _error_of(response)
                failure = _failure_of(error)
            wait_s = self._wait_before_resend(method, failure, error, tries, started)
            if wait_s is None:
                raise error
            log.info(
                "%s %s: %s; try %d of %d in %.2f s",
                method,
                path,
                error,
                tries + 1,
                self.retry.attempts,
                wait_s,
            )
            time.sleep(wait_s)

    def _wait_before_resend(
        self,
        method: str,
        failure: Failure | None,
        error: ClientError,
        tries: int,
        started: float,
    ) -> float | None:
        """Seconds to wait before the next try, or None when there is none."""
        if failure is None or not may_resend(method, failure, self.wait_on_rate_limit):
            return None
        wait_s = self.retry.backoff_s(tries - 1, random.random())
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait_s = error.retry_after
        elapsed_s = time.monotonic() - started
        return wait_s if self.retry.allows(tries, elapsed_s, wait_s) else None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, answering the decoded JSON body."""
        response = self.request(method, path, **kwargs)
        try:
            return json.loads(response.data)
        except ValueError as e:
            raise UnexpectedAnswer(f"{method} {path} answered no JSON: {e}") from e

    def download(self, path: str, sink: BinaryIO, **kwargs: Any) -> int:
        """Stream a GET's body into `sink` as it arrives; answer its size in bytes. A break
        in the body raises at once: the caller knows what it has half-written."""
        size = 0
        response = self.request("GET", path, stream=True, **kwargs)
        try:
            with mapped_exceptions():
                for chunk in response.stream(defaults.DOWNLOAD_CHUNK_BYTES):
                    sink.write(chunk)
                    size += len(chunk)
        finally:
            response.release_conn()
        return size

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._pool.clear()


def _pair(timeout: Timeout) -> tuple[float, float]:
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)
