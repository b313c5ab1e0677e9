"""How a remote command ends when it does not succeed: one line on stderr and its status.

1: a failure (the API's message, a connection, a local file, not logged in);
2: a usage error (click's own); 3: a workload completed with failed images;
4: a wait timed out. `dpip.remote_command` raises these at the edge, once.
"""

from __future__ import annotations

import re
from typing import IO, Any

import click

from client import ApiError

# The API's 401 codes that a new login mends (not bad_credentials: that is the login).
TOKEN_ERRORS = frozenset(
    {"missing_token", "invalid_token", "token_expired", "token_revoked", "unknown_user"}
)


class CommandFailed(click.ClickException):
    """Raised when a remote command fails: `dpip: <message>` on stderr, exit status 1."""

    exit_code = 1

    def __init__(self, message: str, error: str = "failed") -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the message held
        self.error = error

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"dpip: {self.message}", err=True)


class CompletedWithFailures(CommandFailed):
    """Raised when a workload completed and some of its images failed: exit status 3."""

    exit_code = 3


class StillRunning(CommandFailed):
    """Raised when a workload did not complete within the wait's timeout: exit status 4."""

    exit_code = 4


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def failure_of(error: Exception) -> CommandFailed:
    """The exit for an exception of the client, DPIP or the local files."""
    if isinstance(error, ApiError):
        message = error.message
        if error.error in TOKEN_ERRORS:
            message += ": run `dpip login`"
        return CommandFailed(message, error.error)
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return CommandFailed(f"{where}{error.strerror or error}", "local_file_error")
    return CommandFailed(str(error), _snake(type(error).__name__))
