"""One JSON error shape for every failure: {"error": code, "message": what to do}."""

from __future__ import annotations

import logging
import re

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from foundation.errors import DPIPError

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


def error_response(status: int, code: str, message: str):
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer APIError, HTTP errors and unexpected exceptions in the JSON shape."""

    @app.errorhandler(APIError)
    def handle_api_error(e: APIError):
        return error_response(e.status, e.code, e.message)

    @app.errorhandler(HTTPException)
    def handle_http_error(e: HTTPException):
        code = re.sub(r"[^a-z]+", "_", (e.name or "error").lower()).strip("_")
        if e.code == 413:
            code = "payload_too_large"
        return error_response(e.code or 500, code, e.description or e.name)

    @app.errorhandler(Exception)
    def handle_unexpected(e: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed; see its log")
