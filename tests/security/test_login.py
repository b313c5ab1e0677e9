"""Passwords at rest, bad logins, and the login throttle (429 per username and address).

Each test that fails logins does so from its own loopback source address (127.0.x.y), so the
throttle's per-address counters of one test never block another test, nor the fixtures'
logins from 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import cycle

import pytest
import requests

from foundation import defaults
from tests.conftest import ADMIN_PASSWORD, start_cluster, wait_until
from tests.security.helpers import (
    LOGIN_COUNTERS,
    assert_error,
    assert_unchanged,
    database,
    fresh_address,
    session_from,
    snapshot,
)

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


TIMED_GUESSES = 4  # of each kind, fewer than LOGIN_MAX_FAILURES for one user and address


def _login(session: requests.Session, url: str, username: str, password: str):
    return session.post(url + "/login", auth=(username, password), timeout=30)


def test_passwords_are_stored_only_as_slow_kdf_hashes(cluster, admin, alice):
    twins = []
    for index in range(3):
        name = f"twin{index}-{alice.name}"
        response = admin.post("/users", json={"username": name, "password": "same-password"})
        assert response.status_code == 201
        twins.append(name)
    changer = twins.pop()
    changed = admin.request("PATCH", f"/users/{changer}", json={"password": "changed-password"})
    assert changed.status_code == 200
    passwords = {
        "admin": ADMIN_PASSWORD,
        alice.name: alice.password,
        changer: "changed-password",
        twins[0]: "same-password",
        twins[1]: "same-password",
    }
    conn = database(cluster)
    try:
        hashes = dict(conn.execute("SELECT username, password_hash FROM users"))
    finally:
        conn.close()
    for name, password in passwords.items():
        stored = hashes[name]
        assert stored.startswith(("scrypt:", "pbkdf2:")), stored
        assert password not in stored
        assert password.encode().hex() not in stored
    assert hashes[twins[0]] != hashes[twins[1]]  # salted


BAD_LOGINS = [
    pytest.param({"auth": ("ADMIN", ADMIN_PASSWORD)}, 401, "bad_credentials", id="wrong-case-user"),
    pytest.param({"auth": ("admin", "wrong-password")}, 401, "bad_credentials", id="wrong-pw"),
    pytest.param({"auth": ("admin", "")}, 401, "bad_credentials", id="empty-pw"),
    pytest.param({"auth": ("", "")}, 401, "bad_credentials", id="empty-basic"),
    pytest.param({"auth": ("nobody", "whatever")}, 401, "bad_credentials", id="unknown-user"),
    pytest.param({"auth": ("admin' --", "x")}, 401, "bad_credentials", id="sql-injection"),
    pytest.param({"auth": ("x" * 10_000, "x")}, 401, "bad_credentials", id="10000-char-user"),
    pytest.param(
        {"json": {"username": "admin\x00", "password": ADMIN_PASSWORD}},
        401,
        "bad_credentials",
        id="nul-suffix",
    ),
    pytest.param(
        {"json": {"username": "admin", "password": "\ud800" * 8}},
        401,
        "bad_credentials",
        id="lone-surrogate-pw",
    ),
    pytest.param(
        {"json": {"username": "\ud800", "password": "x"}},
        401,
        "bad_credentials",
        id="lone-surrogate-user",
    ),
    pytest.param({"json": {"username": "admin"}}, 400, "missing_credentials", id="no-password"),
    pytest.param({}, 400, "missing_credentials", id="nothing"),
    pytest.param(
        {"json": {"username": ["admin"], "password": ADMIN_PASSWORD}},
        400,
        "missing_credentials",
        id="list-username",
    ),
    pytest.param(
        {"json": {"username": "admin", "password": None}},
        400,
        "missing_credentials",
        id="null-password",
    ),
    pytest.param(
        {
            "data": "[" * 100_000 + "]" * 100_000,
            "headers": {"Content-Type": "application/json"},
        },
        400,
        "missing_credentials",
        id="nested-100000-deep",
    ),
]


@pytest.mark.parametrize(("kwargs", "status", "code"), BAD_LOGINS)
def test_bad_login_is_refused_without_a_token(cluster, kwargs, status, code):
    before = snapshot(cluster)
    with session_from(fresh_address()) as session:
        response = session.post(cluster.url + "/login", timeout=30, **kwargs)
    body = assert_error(response, status, code)
    assert "token" not in body
    assert_unchanged(cluster, before, allowed=LOGIN_COUNTERS if status == 401 else ())


def test_too_many_failures_for_a_user_answer_429_even_with_the_right_password(cluster, alice):
    address, elsewhere = fresh_address(), fresh_address()
    with session_from(address) as attacker, session_from(elsewhere) as owner:
        for _ in range(defaults.LOGIN_MAX_FAILURES):
            assert_error(_login(attacker, cluster.url, alice.name, "guess"), 401, "bad_credentials")
        for password in ("guess", alice.password):
            throttled = _login(attacker, cluster.url, alice.name, password)
            body = assert_error(throttled, 429, "too_many_attempts")
            assert "token" not in body
            assert 1 <= int(throttled.headers["Retry-After"]) <= defaults.LOGIN_WINDOW_S
        # the same user from another address, and another user from this one, are not blocked
        assert _login(owner, cluster.url, alice.name, alice.password).status_code == 200
        assert _login(attacker, cluster.url, "admin", ADMIN_PASSWORD).status_code == 200
        # and a success elsewhere does not lift the block here
        assert _login(attacker, cluster.url, alice.name, alice.password).status_code == 429


def test_the_address_is_capped_across_usernames(cluster, alice):
    address, elsewhere = fresh_address(), fresh_address()
    with session_from(address) as sprayer, session_from(elsewhere) as owner:
        for index in range(defaults.LOGIN_MAX_FAILURES_PER_ADDRESS):
            response = _login(sprayer, cluster.url, f"spray-{index}", "password1")
            assert_error(response, 401, "bad_credentials")
        for username, password in ((alice.name, alice.password), ("spray-new", "password1")):
            throttled = _login(sprayer, cluster.url, username, password)
            assert_error(throttled, 429, "too_many_attempts")
            assert int(throttled.headers["Retry-After"]) >= 1
        assert _login(owner, cluster.url, alice.name, alice.password).status_code == 200


def test_another_users_success_does_not_reset_the_count(cluster, alice, bob):
    with session_from(fresh_address()) as session:
        for _ in range(defaults.LOGIN_MAX_FAILURES - 1):
            assert _login(session, cluster.url, alice.name, "guess").status_code == 401
        assert _login(session, cluster.url, bob.name, bob.password).status_code == 200
        assert _login(session, cluster.url, alice.name, "guess").status_code == 401
        throttled = _login(session, cluster.url, alice.name, alice.password)
        assert_error(throttled, 429, "too_many_attempts")


def test_only_failures_count(cluster, alice):
    """Right passwords and requests without credentials never throttle anyone."""
    with session_from(fresh_address()) as session:
        for _ in range(defaults.LOGIN_MAX_FAILURES_PER_ADDRESS + 5):
            assert session.post(cluster.url + "/login", timeout=30).status_code == 400
        for _ in range(defaults.LOGIN_MAX_FAILURES + 2):
            assert _login(session, cluster.url, alice.name, alice.password).status_code == 200


def test_forwarded_for_headers_do_not_change_the_address(cluster, alice):
    with session_from(fresh_address()) as session:
        for index in range(defaults.LOGIN_MAX_FAILURES + 1):
            response = session.post(
                cluster.url + "/login",
                auth=(alice.name, "guess"),
                headers={"X-Forwarded-For": f"10.1.2.{index}", "X-Real-IP": f"10.1.3.{index}"},
                timeout=30,
            )
        assert_error(response, 429, "too_many_attempts")


@pytest.fixture
def short_window_cluster(tmp_path) -> Iterator:
    """A cluster whose API reads the throttle settings from DPIP_LOGIN_* variables."""
    running = start_cluster(
        tmp_path, workers=0, env={"DPIP_LOGIN_MAX_FAILURES": "2", "DPIP_LOGIN_WINDOW_S": "1"}
    )
    try:
        yield running
    finally:
        running.stop_all()


def test_the_limit_and_window_come_from_the_environment(short_window_cluster):
    url = short_window_cluster.url
    with requests.Session() as session:
        for _ in range(2):
            assert _login(session, url, "admin", "wrong-password").status_code == 401
        throttled = _login(session, url, "admin", ADMIN_PASSWORD)
        assert_error(throttled, 429, "too_many_attempts")
        assert throttled.headers["Retry-After"] == "1"
        wait_until(
            lambda: _login(session, url, "admin", ADMIN_PASSWORD).status_code == 200,
            5,
            "the 1 s window to pass",
        )


def test_guesses_for_one_account_from_many_addresses_wait_a_growing_delay(cluster, admin):
    """Each address stays under its own limits; the account's count still delays them all."""
    name, password = f"spread-target-{time.monotonic_ns()}", "spread-target-secret"
    assert admin.post("/users", json={"username": name, "password": password}).status_code == 201
    with ExitStack() as stack:
        sessions = [stack.enter_context(session_from(fresh_address())) for _ in range(12)]
        guessers = cycle(sessions)

        def guess(password_tried: str = "guess") -> requests.Response:
            return _login(next(guessers), cluster.url, name, password_tried)

        for _ in range(defaults.LOGIN_ACCOUNT_MAX_FAILURES):
            assert_error(guess(), 401, "bad_credentials")
        first = guess()
        assert_error(first, 429, "too_many_attempts")
        assert first.headers["Retry-After"] == "1"
        # Once the 1 s delay has passed one more guess gets through, and the delay doubles,
        # for the right password too.
        wait_until(lambda: guess().status_code == 401, 5, "the first delay to pass")
        second = guess(password)
        assert_error(second, 429, "too_many_attempts")
        assert second.headers["Retry-After"] == "2"
        # The owner gets in once that delay has passed, which resets the account's count.
        owner = stack.enter_context(session_from(fresh_address()))
        wait_until(
            lambda: _login(owner, cluster.url, name, password).status_code == 200,
            5,
            "the second delay to pass",
        )
        for _ in range(2):
            assert_error(guess(), 401, "bad_credentials")


@pytest.fixture
def short_account_delay_cluster(tmp_path) -> Iterator:
    """A cluster whose API reads the account delay from DPIP_LOGIN_ACCOUNT_* variables."""
    env = {
        "DPIP_LOGIN_ACCOUNT_MAX_FAILURES": "1",
        "DPIP_LOGIN_ACCOUNT_FIRST_DELAY_S": "2",
        "DPIP_LOGIN_ACCOUNT_MAX_DELAY_S": "3",
        "DPIP_LOGIN_ACCOUNT_MEMORY_S": "3",
    }
    running = start_cluster(tmp_path, workers=0, env=env)
    try:
        yield running
    finally:
        running.stop_all()


def test_the_account_delay_comes_from_the_environment(short_account_delay_cluster):
    url = short_account_delay_cluster.url
    addresses = (fresh_address() for _ in range(100))
    with ExitStack() as stack:

        def guess() -> requests.Response:
            session = stack.enter_context(session_from(next(addresses)))
            return _login(session, url, "admin", "wrong-password")

        assert guess().status_code == 401
        assert guess().headers["Retry-After"] == "2"  # after 1 failure: the first delay
        wait_until(lambda: guess().status_code == 401, 5, "the first delay to pass")
        assert guess().headers["Retry-After"] == "3"  # doubled to 4 s, capped at 3 s


def test_login_time_does_not_tell_whether_a_user_exists(cluster, admin):
    """Regression test: an unknown username once returned without running the password KDF
    (~0.4 ms against ~170 ms for a wrong password), so login timing told which users exist.

    The property is about time, so it is timed, with a margin load cannot break: the two
    kinds of guess alternate (load slows both alike), and the fastest of each is compared
    (load only ever adds time); without the KDF, unknown names answer ~50 times faster."""
    name = f"timed-{time.monotonic_ns()}"
    response = admin.post("/users", json={"username": name, "password": "timed-secret"})
    assert response.status_code == 201
    times_ms: dict[str, list[float]] = {"existing": [], "missing": []}
    with session_from(fresh_address()) as session:
        for index in range(TIMED_GUESSES):  # under the failures that throttle a user
            for kind, username in (("existing", name), ("missing", f"ghost-{index}-{name}")):
                started = time.perf_counter()
                assert _login(session, cluster.url, username, "guess").status_code == 401
                times_ms[kind].append((time.perf_counter() - started) * 1000)
    existing, missing = min(times_ms["existing"]), min(times_ms["missing"])
    assert missing >= existing / 4, times_ms
