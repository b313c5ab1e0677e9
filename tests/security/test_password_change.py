"""A password change revokes the user's tokens, and changing your own needs the current one.

A stolen one-hour token must not become a permanent account: the thief can neither set a
new password without the current one (nor guess it faster than /login allows), nor keep
using the token once the owner or an admin changes the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from foundation import defaults
from tests.conftest import Client
from tests.security.conftest import Actor, create_actor
from tests.security.helpers import (
    LOGIN_COUNTERS,
    assert_error,
    assert_unchanged,
    fresh_address,
    session_from,
    snapshot,
)

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


@contextmanager
def _from_fresh_address(cluster, token: str) -> Iterator[Client]:
    """A client of `token` on its own loopback address, so its failed password checks count
    against no other test's address (the fixtures log in from 127.0.0.1)."""
    client = Client(cluster.url, token)
    client.session.close()
    with session_from(fresh_address()) as client.session:
        yield client


def _change_own_password(client: Client, actor: Actor, fields: dict):
    return client.request(
        "PATCH", f"/users/{actor.name}", json={"password": "new-secret-1"} | fields
    )


def _logs_in(cluster, name: str, password: str) -> bool:
    with session_from(fresh_address()) as session:
        response = session.post(cluster.url + "/login", auth=(name, password), timeout=30)
    return response.status_code == 200


def test_a_self_change_revokes_every_token_of_the_user(cluster, admin):
    actor = create_actor(cluster, admin, "changer")
    stolen = cluster.login(actor.name, actor.password)
    assert stolen.get("/workloads").status_code == 200

    response = _change_own_password(actor.client, actor, {"current_password": actor.password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == actor.name

    for old in (stolen, actor.client):  # the caller's own token is replaced too
        assert_error(old.get("/workloads"), 401, "token_revoked")
    assert Client(cluster.url, body["token"]).get("/workloads").status_code == 200
    assert _logs_in(cluster, actor.name, "new-secret-1")
    assert not _logs_in(cluster, actor.name, actor.password)


def test_an_admin_reset_revokes_every_token_of_the_user(cluster, admin):
    actor = create_actor(cluster, admin, "reset")
    stolen = cluster.login(actor.name, actor.password)

    response = admin.request("PATCH", f"/users/{actor.name}", json={"password": "reset-secret-1"})
    assert response.status_code == 200, response.text
    assert "token" not in response.json()  # the admin's own token is untouched

    for old in (stolen, actor.client):
        assert_error(old.get("/workloads"), 401, "token_revoked")
    assert admin.get("/users").status_code == 200
    assert _logs_in(cluster, actor.name, "reset-secret-1")


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        pytest.param({}, 400, "missing_field", id="no-current-password"),
        pytest.param({"current_password": ""}, 400, "missing_field", id="empty"),
        pytest.param({"current_password": 12345678}, 400, "missing_field", id="number"),
        pytest.param({"current_password": "a-wrong-guess"}, 403, "wrong_password", id="wrong"),
    ],
)
def test_a_self_change_without_the_current_password_changes_nothing(
    cluster, admin, fields, status, code
):
    actor = create_actor(cluster, admin, "thief-target")
    before = snapshot(cluster)
    with _from_fresh_address(cluster, actor.client.token) as thief:
        assert_error(_change_own_password(thief, actor, fields), status, code)
    counted = LOGIN_COUNTERS if code == "wrong_password" else ()
    assert_unchanged(cluster, before, allowed=counted)  # the password hash included
    assert actor.client.get("/workloads").status_code == 200  # no token was revoked
    assert _logs_in(cluster, actor.name, actor.password)


def test_a_stolen_token_cannot_guess_the_current_password_past_the_throttle(cluster, admin):
    actor = create_actor(cluster, admin, "guessed")
    before = snapshot(cluster)
    with _from_fresh_address(cluster, actor.client.token) as thief:
        for index in range(defaults.LOGIN_MAX_FAILURES):
            guess = {"current_password": f"guess-{index}"}
            assert_error(_change_own_password(thief, actor, guess), 403, "wrong_password")
        right = _change_own_password(thief, actor, {"current_password": actor.password})
    assert_error(right, 429, "too_many_attempts")
    assert int(right.headers["Retry-After"]) >= 1
    assert_unchanged(cluster, before, allowed=LOGIN_COUNTERS)
