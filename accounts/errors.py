"""The account operations' exceptions: the API turns them into HTTP answers, the CLI into
messages."""

from __future__ import annotations

from foundation.errors import DPIPError


class AccountError(DPIPError):
    """Raised when an account operation is refused."""


class WeakPassword(AccountError, ValueError):
    """Raised when a password breaks the password rule."""


class UnknownUser(AccountError, LookupError):
    """Raised when an operation names a user that does not exist."""
