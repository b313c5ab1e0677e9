"""Read request fields the same way from JSON, form bodies and query strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request

from api.errors import bad_request


def iso_time(timestamp: float) -> str:
    """Render a Unix timestamp as ISO 8601 in UTC, as every time in the API is."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


# URL converter for ids: larger numbers would overflow SQLite's integers, so they do not match.
ID_CONVERTER = f"int(max={2**62})"


def is_utf8(value: str) -> bool:
    """False for text with lone surrogates (from JSON escapes), which nothing can store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_body() -> Any:
    """The request's JSON body, or None when there is none or it cannot be read."""
    if not request.is_json:
        return None
    try:
        return request.get_json(silent=True)
    except RecursionError:  # absurdly nested JSON reads as unreadable
        return None


def request_fields(include_query: bool = False) -> dict[str, Any]:
    """Merge the query string (optionally), the form body and a JSON object body."""
    fields: dict[str, Any] = {}
    if include_query:
        fields.update(request.args.to_dict())
    fields.update(request.form.to_dict())
    body = json_body()
    if request.is_json and request.content_length and body is None:
        raise bad_request("the body is not valid JSON", "invalid_json")
    if body is not None and not isinstance(body, dict):
        raise bad_request("the JSON body must be an object", "invalid_json")
    fields.update(body or {})
    return fields


def parse_id(fields: dict[str, Any], name: str, hint: str = "") -> int:
    """Return a non-negative integer field, or answer 400 saying what to send."""
    value = fields.get(name)
    if value is None or value == "":
        raise bad_request(f"missing field '{name}'{hint}", "missing_field")
    if isinstance(value, bool):
        raise bad_request(f"'{name}' must be a whole number", "invalid_field")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise bad_request(f"'{name}' must be a whole number", "invalid_field") from None
    if number < 0 or number > 2**62:
        raise bad_request(f"'{name}' is out of range", "invalid_field")
    return number
