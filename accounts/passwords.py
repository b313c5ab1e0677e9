"""The password rule, one for the API, the CLI and the first admin."""

from __future__ import annotations

from accounts.errors import WeakPassword

MIN_PASSWORD_CHARS = 8


def check_password(password: object) -> str:
    """Return `password` when it follows the rule, else raise WeakPassword.

    The rule: a string of at least MIN_PASSWORD_CHARS characters that is valid UTF-8 (text
    decoded from JSON escapes may hold lone surrogates, which no hash function can take).
    """
    if isinstance(password, str) and len(password) >= MIN_PASSWORD_CHARS:
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return password
    raise WeakPassword(
        f"a password must be text of at least {MIN_PASSWORD_CHARS} characters (valid UTF-8)"
    )
