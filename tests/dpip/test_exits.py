"""How a failure ends a remote command: its line, its code for --json, its exit status."""

from __future__ import annotations

import pytest

from client import ConnectionFailed, NotAuthenticated, NotFound
from dpip.credentials import NotLoggedIn
from dpip.exits import CompletedWithFailures, StillRunning, failure_of


@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        (
            NotFound(404, "not_found", "workload 9 does not exist"),
            "workload 9 does not exist",
            "not_found",
        ),
        (
            NotAuthenticated(401, "token_revoked", "the token has been revoked"),
            "the token has been revoked: run `dpip login`",
            "token_revoked",
        ),
        (
            NotAuthenticated(401, "bad_credentials", "wrong password"),
            "wrong password",
            "bad_credentials",
        ),
        (
            ConnectionFailed("the API cannot be reached:\n refused"),
            "the API cannot be reached: refused",
            "connection_failed",
        ),
        (
            NotLoggedIn("not logged in: run `dpip login URL`"),
            "not logged in: run `dpip login URL`",
            "not_logged_in",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "out/x"),
            "out/x: No such file or directory",
            "local_file_error",
        ),
    ],
)
def test_each_failure_is_one_line_with_its_code_and_status_1(error, message, code):
    failure = failure_of(error)
    assert (failure.message, failure.error, failure.exit_code) == (message, code, 1)


def test_failed_images_and_timeouts_have_statuses_of_their_own():
    assert (CompletedWithFailures("x").exit_code, StillRunning("x").exit_code) == (3, 4)
