"""HTTP to the API: a requests.Session per thread, a timeout on every request, resends by
`client.retries`' rules, and requests' and urllib3's exceptions turned into the client's.

This is the only module that imports requests or urllib3.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import requests
import urllib3.exceptions
from requests.auth import AuthBase

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
LOST_CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,  # a body cut short
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,  # should requests let one through
)


class _BearerAuth(AuthBase):
    """The token, if any, as a Bearer header. Always passed, so that requests never falls
    back to ~/.netrc credentials, which would replace it."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _urllib3_reason(error: BaseException) -> BaseException | None:
    """The urllib3 exception under a requests one (requests wraps MaxRetryError's reason)."""
    cause = error.args[0] if error.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        return cause.reason
    return cause if isinstance(cause, BaseException) else None


def classify(error: Exception) -> tuple[Failure | None, ClientError]:
    """Why a request failed (None: nothing a resend could help) and the client's exception
    for it, for an exception of requests or urllib3."""
    causes = (error, _urllib3_reason(error))
    if isinstance(error, requests.ConnectTimeout):
        return Failure.NOT_CONNECTED, RequestTimedOut(f"no connection to the API in time: {error}")
    if any(isinstance(cause, urllib3.exceptions.ConnectTimeoutError) for cause in causes):
        # urllib3's NewConnectionError: refused, or the host name unknown
        return Failure.NOT_CONNECTED, ConnectionFailed(f"the API cannot be reached: {error}")
    if isinstance(error, requests.ReadTimeout) or any(
        isinstance(cause, urllib3.exceptions.ReadTimeoutError) for cause in causes
    ):
        return Failure.READ_TIMEOUT, RequestTimedOut(f"the API did not answer in time: {error}")
    if isinstance(error, LOST_CONNECTION_ERRORS):
        return Failure.CONNECTION_LOST, ConnectionFailed(f"the connection broke: {error}")
    return None, ClientError(f"the request could not be made: {error}")


@contextmanager
def mapped_exceptions() -> Iterator[None]:
    """Raise requests' and urllib3's exceptions as the client's (for body reads, which are
    never resent)."""
    try:
        yield
    except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
        raise classify(e)[1] from e


def _error_of(response: requests.Response) -> ApiError:
    """The exception for an error answer, its body read and the response closed."""
    with response, mapped_exceptions():
        text = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_for_answer(response.status_code, body, response.headers.get("Retry-After"), text)


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
        self.timeout: tuple[float, float] = (
            timeout if isinstance(timeout, tuple) else (timeout, timeout)
        )
        self.retry = retry or RetryPolicy()
        self.wait_on_rate_limit = wait_on_rate_limit
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _session(self) -> requests.Session:
        """This thread's session: its kept-alive connections serve its next requests."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def request(
        self, method: str, path: str, *, timeout: Timeout | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send a request (keyword arguments as requests takes them) and answer its 2xx
        response; raise the client's exception for anything else, after the resends the
        policy allows. A `data` body that is resent must be an iterable that starts over."""
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            try:
                response = self._session().request(
                    method,
                    self.url + path,
                    auth=_BearerAuth(self.token),
                    timeout=timeout or self.timeout,
                    **kwargs,
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
                failure, error = classify(e)
                error.__cause__ = e
            else:
                if response.ok:
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
            return response.json()
        except ValueError as e:
            raise UnexpectedAnswer(f"{method} {path} answered no JSON: {e}") from e

    def download(self, path: str, sink: BinaryIO, **kwargs: Any) -> int:
        """Stream a GET's body into `sink` as it arrives; answer its size in bytes. A break
        in the body raises at once: the caller knows what it has half-written."""
        size = 0
        response = self.request("GET", path, stream=True, **kwargs)
        with response, mapped_exceptions():
            for chunk in response.iter_content(defaults.DOWNLOAD_CHUNK_BYTES):
                sink.write(chunk)
                size += len(chunk)
        return size

    def close(self) -> None:
        """Close every thread's session and its kept-alive connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()
