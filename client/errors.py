"""Everything the client raises, under one root, and how an API error answer maps onto it.

The API answers every error as `{"error": code, "message": text}` with its HTTP status;
`error_for_answer` turns such an answer into the class of its status, so callers catch
`NotFound` or `RateLimited` instead of comparing numbers. Transport failures (no
connection, no answer in time) are `ConnectionFailed` and `RequestTimedOut`.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.models import Workload


class ClientError(Exception):
    """Raised (through a subclass) for any failure the DPIP client detects."""


class ApiError(ClientError):
    """Raised when the API answers with an error status; `error` is its code."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


class BadRequest(ApiError):
    """Raised when the API refuses the request as invalid (a 4xx without its own class)."""


class NotAuthenticated(ApiError):
    """Raised when the API answers 401: no token, a wrong password, or a token no longer valid."""


class Forbidden(ApiError):
    """Raised when the API answers 403: the caller's role may not do this."""


class NotFound(ApiError):
    """Raised when the API answers 404: no such thing, or not the caller's."""


class Conflict(ApiError):
    """Raised when the API answers 409: the name is taken."""


class TooLarge(ApiError):
    """Raised when the API answers 413: a request, an image or a batch over its limit."""


class RateLimited(ApiError):
    """Raised when the API answers 429; `retry_after` is the seconds it asks to wait (or None)."""

    def __init__(self, status: int, error: str, message: str, retry_after: float | None) -> None:
        super().__init__(status, error, message)
        self.retry_after = retry_after


class ServerError(ApiError):
    """Raised when the API answers 5xx: it failed, or is out of storage."""


class ConnectionFailed(ClientError):
    """Raised when the API cannot be reached, or the connection broke before the answer."""


class RequestTimedOut(ClientError):
    """Raised when the API took longer than the client's timeout to connect or to answer."""


class UnexpectedAnswer(ClientError):
    """Raised when an answer is not what the DPIP API sends (another server at the URL?)."""


class UploadSourceError(ClientError):
    """Raised when an item to upload cannot be read, or changed size while it was sent."""


class WaitTimedOut(ClientError):
    """Raised when a workload is not completed within `wait`'s timeout; `workload` is the
    last state seen."""

    def __init__(self, workload: Workload, timeout_s: float) -> None:
        super().__init__(
            f"workload {workload.id} is still {workload.status} after {timeout_s:g} s"
            f" ({workload.images.finished} of {workload.images.total} images finished)"
        )
        self.workload = workload


CLASS_OF_STATUS: dict[int, type[ApiError]] = {
    401: NotAuthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
}


def error_for_answer(
    status: int, body: Any, retry_after: str | None = None, text: str = ""
) -> ApiError:
    """The exception for an error answer: `body` is its decoded JSON (anything, if it was
    not the API's shape), `retry_after` its Retry-After header, `text` its raw body."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        error, message = body["error"], str(body.get("message", ""))
    else:  # not the API's shape: a proxy's page, gunicorn's plain-text 400/431
        error, message = f"http_{status}", text.strip()[:200] or "no message"
    if status == 429:
        return RateLimited(status, error, message, parse_retry_after(retry_after))
    if status in CLASS_OF_STATUS:
        return CLASS_OF_STATUS[status](status, error, message)
    if 400 <= status < 500:
        return BadRequest(status, error, message)
    if status >= 500:
        return ServerError(status, error, message)
    return ApiError(status, error, message)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: whole seconds or an HTTP date (RFC 9110);
    None when absent or unreadable, 0 for a date already past."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
