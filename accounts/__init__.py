"""User accounts: the password rule and the user operations the API and the CLI share."""

from accounts.errors import AccountError, UnknownUser, WeakPassword
from accounts.passwords import MIN_PASSWORD_CHARS, check_password
from accounts.users import create_user, delete_user, ensure_user

__all__ = [
    "MIN_PASSWORD_CHARS",
    "AccountError",
    "UnknownUser",
    "WeakPassword",
    "check_password",
    "create_user",
    "delete_user",
    "ensure_user",
]
