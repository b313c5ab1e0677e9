"""One JSON error shape for every failure: {"error": code, "message": what to do}."""

from __future__ import annotations

import logging
import re

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from accounts import UnknownUser, WeakPassword
from datastore import StoreUnavailable
from datastore.users import UserExists
from foundation.errors import DPIPError
from imagestore import ImageMissing, ImageStoreError, StoreFull, StoreUnreachable

log = logging.getLogger(__name__)


class APIError(DPIPError):
    """Raised by handlers to answer with a JSON error and an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str, code: str = "bad_request") -> APIError:
    return APIError(400, code, message)


def not_found(message: str) -> APIError:
    return APIError(404, "not_found", message)


def forbidden(message: str) -> APIError:
    return APIError(403, "forbidden", message)


# The lower packages' errors and their answers: Flask picks the closest class of an error.
ANSWERS: dict[type[DPIPError], tuple[int, str]] = {
    StoreUnavailable: (503, "datastore_unavailable"),  # clients resend a GET after a 503
    StoreFull: (507, "insufficient_storage"),
    StoreUnreachable: (503, "image_store_unavailable"),
    ImageMissing: (404, "not_found"),
    ImageStoreError: (500, "storage_error"),
    WeakPassword: (400, "invalid_password"),
    UnknownUser: (404, "not_found"),
    UserExists: (409, "duplicate_username"),
}


def error_response(status: int, code: str, message: str):
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


def error_answer(e: Exception) -> tuple[int, str, str]:
    """The status, code and message an error is answered with, whatever its kind: an
    APIError says its own; a lower package's error, the closest class in ANSWERS; an HTTP
    error, its status; anything else is a 500 (logged with its traceback)."""
    if isinstance(e, APIError):
        return e.status, e.code, e.message
    if isinstance(e, HTTPException):
        code = re.sub(r"[^a-z]+", "_", (e.name or "error").lower()).strip("_")
        if e.code == 413:
            code = "payload_too_large"
        return e.code or 500, code, e.description or e.name
    answer = next((ANSWERS[c] for c in type(e).__mro__ if c in ANSWERS), None)
    if answer is None:
        log.exception("unhandled error")
        return 500, "internal_error", "the server failed; see its log"
    status, code = answer
    if status >= 500:
        log.warning("%s: %s", code, e)
    return status, code, str(e)


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the JSON shape (`error_answer`)."""

    @app.errorhandler(Exception)
    def answer_in_json(e: Exception):
        return error_response(*error_answer(e))
