"""How an API error answer maps onto the client's exceptions (pure, no server)."""

from __future__ import annotations

import email.utils

import pytest

from client import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
)
from client.errors import error_for_answer, parse_retry_after


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequest),
        (401, NotAuthenticated),
        (403, Forbidden),
        (404, NotFound),
        (405, BadRequest),
        (409, Conflict),
        (413, TooLarge),
        (415, BadRequest),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (507, ServerError),
    ],
)
def test_each_status_has_its_class_with_the_apis_code_and_message(status, error_class):
    body = {"error": "some_code", "message": "what to do"}
    error = error_for_answer(status, body)
    assert type(error) is error_class
    assert isinstance(error, ApiError) and isinstance(error, ClientError)
    assert (error.status, error.error, error.message) == (status, "some_code", "what to do")
    assert str(error) == f"{status} some_code: what to do"


def test_an_answer_not_in_the_apis_shape_keeps_its_text():
    error = error_for_answer(502, None, text="<html>Bad Gateway</html>\n")
    assert type(error) is ServerError
    assert (error.error, error.message) == ("http_502", "<html>Bad Gateway</html>")
    assert error_for_answer(400, ["not", "an", "object"]).message == "no message"


def test_rate_limited_carries_its_retry_after():
    error = error_for_answer(429, {"error": "too_many_attempts", "message": "m"}, "59")
    assert isinstance(error, RateLimited) and error.retry_after == 59.0
    assert error_for_answer(429, {"error": "too_many_attempts", "message": "m"}).retry_after is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        (" 120 ", 120.0),
        (email.utils.formatdate(1_000_030, usegmt=True), 30.0),
        (email.utils.formatdate(999_000, usegmt=True), 0.0),  # already past
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    assert parse_retry_after(header, now=1_000_000) == seconds
