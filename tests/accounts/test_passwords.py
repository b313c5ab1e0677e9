"""The one password rule: the API, `dpip user add` and the first admin all check it."""

from __future__ import annotations

import pytest

from accounts import MIN_PASSWORD_CHARS, WeakPassword, check_password


@pytest.mark.parametrize(
    "password",
    ["x" * MIN_PASSWORD_CHARS, "correct horse battery staple", "ünïcödé!", "密码密码密码密码"],
)
def test_passwords_that_follow_the_rule(password: str) -> None:
    assert check_password(password) == password


@pytest.mark.parametrize(
    "password",
    [
        "",
        "x" * (MIN_PASSWORD_CHARS - 1),
        "long enough\udc80",  # a lone surrogate, as a JSON escape or a non-UTF-8 stdin gives
        None,
        12345678,
        b"bytes-not-text",
        ["a list", "of text"],
    ],
)
def test_passwords_that_break_the_rule(password: object) -> None:
    with pytest.raises(WeakPassword, match=f"at least {MIN_PASSWORD_CHARS} characters"):
        check_password(password)
