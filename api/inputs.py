"""Read request fields the same way from JSON, form bodies and query strings."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter, Map

from api.errors import bad_request


def iso_time(timestamp: float) -> str:
    """Render a Unix timestamp as ISO 8601 in UTC, as every time in the API is."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


MAX_ID = 2**62  # larger numbers would overflow SQLite's integers
ID_CONVERTER = "id"  # the URL converter of ids, registered by the app


def numbers_up_to(limit: int) -> str:
    """A regular expression of the decimal numbers from 0 to `limit`, leading zeros allowed:
    any number with fewer digits, or with as many, one that first falls below `limit`'s digit
    at some position after sharing its digits before it, or `limit` itself."""
    digits = str(limit)
    branches = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for position, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - position - 1
            branches.append(f"{digits[:position]}[0-{int(digit) - 1}][0-9]{{{rest}}}")
    branches.append(digits)
    return f"0*(?:{'|'.join(branches)})"


class IdConverter(IntegerConverter):
    """Ids in URLs: ASCII digits only (Werkzeug's `int` matches any script's digits, so
    an Arabic-Indic one read as workload 1), at most MAX_ID; anything else does not match (404).

    The limit is in the regular expression, not only in `to_python`: Werkzeug answers a
    number its converter refuses with 405 when the URL has a rule for another method."""

    regex = numbers_up_to(MAX_ID)

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, max=MAX_ID)


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


def client_filename(value: Any, max_chars: int) -> str | None:
    """A client's name for an image, kept as text and never used as a path: None when there
    is none; its last `max_chars` characters (where the extension is), with control and
    format characters and lone surrogates turned into U+FFFD, so it stores and shows safely."""
    if not isinstance(value, str) or not value:
        return None
    return "".join(
        "\ufffd" if unicodedata.category(ch).startswith("C") else ch for ch in value[-max_chars:]
    )


class RequestFields(dict[str, Any]):
    """A request's fields, remembering which came typed from a JSON body, not as text."""

    def __init__(self, text: Mapping[str, str], json: Mapping[str, Any]) -> None:
        super().__init__(text)
        self.update(json)
        self.from_json = frozenset(json)


def request_fields(include_query: bool = False) -> RequestFields:
    """Merge the query string (optionally), the form body and a JSON object body."""
    text: dict[str, str] = {}
    if include_query:
        text.update(request.args.to_dict())
    text.update(request.form.to_dict())
    body = json_body()
    if request.is_json and request.content_length and body is None:
        raise bad_request("the body is not valid JSON", "invalid_json")
    if body is not None and not isinstance(body, dict):
        raise bad_request("the JSON body must be an object", "invalid_json")
    return RequestFields(text, body or {})


def parse_id(fields: Mapping[str, Any], name: str, hint: str = "") -> int:
    """Return an id field (a whole number from 0 to 2^62), or answer 400 saying what to send.

    In JSON an id is an integer (not 1.5, 1.0, "1" or true); as text (a query string, a
    form field) it is ASCII digits only (not " 1", "1_0", "+1" or other scripts' digits).
    """
    value = fields.get(name)
    if value is None or value == "":
        raise bad_request(f"missing field '{name}'{hint}", "missing_field")
    if isinstance(fields, RequestFields) and name in fields.from_json:
        is_whole_number = type(value) is int  # bool is a subclass of int, so not isinstance
    else:
        is_whole_number = isinstance(value, str) and value.isascii() and value.isdigit()
    if not is_whole_number:
        raise bad_request(f"'{name}' must be a whole number", "invalid_field")
    try:
        number = int(value)
    except ValueError:  # more digits than Python converts
        number = MAX_ID + 1
    if not 0 <= number <= MAX_ID:
        raise bad_request(f"'{name}' is out of range", "invalid_field")
    return number
