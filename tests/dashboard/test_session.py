"""The dashboard's session and pages against the real API: the cookie's flags, CSRF on
every state change a cookie could make, revocation at log-out, escaping and the CSP, and
other users' workloads (404). No browser: requests plays one."""

from __future__ import annotations

import requests

from foundation.defaults import LOGIN_MAX_FAILURES
from tests.conftest import ADMIN_PASSWORD, Cluster
from tests.dashboard.conftest import CSRF_COOKIE, SESSION_COOKIE, browser_session

XSS_NAME = "<img src=x onerror=alert(2)>"  # the browser test has the (1)


def _post_workload(session: requests.Session, cluster: Cluster, **headers) -> requests.Response:
    return session.post(
        cluster.url + "/workloads", data={"filter": "grayscale"}, headers=headers, timeout=10
    )


def test_the_login_form_sets_an_http_only_strict_cookie_and_no_token_in_the_url(
    cluster: Cluster,
) -> None:
    answer = requests.post(
        cluster.url + "/ui/login",
        data={"username": "admin", "password": ADMIN_PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert (answer.status_code, answer.headers["Location"]) == (303, "/")
    set_cookies = answer.raw.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in set_cookies if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    csrf_cookie = next(c for c in set_cookies if c.startswith(CSRF_COOKIE + "="))
    assert "HttpOnly" not in csrf_cookie  # the page's script reads it, to send it back


def test_a_wrong_password_shows_the_form_again(cluster: Cluster) -> None:
    answer = requests.post(
        cluster.url + "/ui/login",
        data={"username": "nobody-here", "password": "wrong"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert "Wrong username or password" in answer.text
    assert SESSION_COOKIE not in answer.cookies


def test_the_form_shares_the_login_throttle(cluster: Cluster) -> None:
    form = {"username": "throttled-in-the-form", "password": "wrong"}
    failures = [
        requests.post(cluster.url + "/ui/login", data=form, timeout=10).status_code
        for _ in range(LOGIN_MAX_FAILURES)
    ]
    assert failures == [401] * LOGIN_MAX_FAILURES
    throttled = requests.post(cluster.url + "/ui/login", data=form, timeout=10)
    assert throttled.status_code == 429 and "Too many failed logins" in throttled.text
    assert requests.post(cluster.url + "/login", json=form, timeout=10).status_code == 429


def test_pages_without_a_session_go_to_the_login(cluster: Cluster) -> None:
    for path in ("/", "/ui/overview", "/ui/users", "/ui/workloads/1"):
        answer = requests.get(cluster.url + path, allow_redirects=False, timeout=10)
        assert (answer.status_code, answer.headers["Location"]) == (303, "/ui/login"), path


def test_a_cookie_alone_changes_nothing_without_the_csrf_header(
    cluster: Cluster, admin_session: requests.Session
) -> None:
    """A page of another site can make the browser send the cookie, not the header."""
    refused = _post_workload(admin_session, cluster)
    assert refused.status_code == 401, refused.text
    wrong = _post_workload(admin_session, cluster, **{"X-CSRF-TOKEN": "guessed"})
    assert wrong.status_code == 401, wrong.text
    csrf = admin_session.cookies[CSRF_COOKIE]
    accepted = _post_workload(admin_session, cluster, **{"X-CSRF-TOKEN": csrf})
    assert accepted.status_code == 201, accepted.text


def test_a_login_token_in_a_cookie_authorises_no_change(cluster: Cluster, admin) -> None:
    """Tokens from POST /login carry no CSRF value: as a cookie they change nothing."""
    session = requests.Session()
    session.cookies.set(SESSION_COOKIE, admin.token)
    answer = _post_workload(session, cluster, **{"X-CSRF-TOKEN": "anything"})
    assert answer.status_code == 401, answer.text
    assert session.get(cluster.url + "/workloads", timeout=10).status_code == 200


def test_user_text_is_escaped_and_scripts_come_only_from_the_api(
    cluster: Cluster, admin, admin_session: requests.Session
) -> None:
    workload = admin.create_workload(workload_name=XSS_NAME)
    for path in ("/", "/ui/overview", f"/ui/workloads/{workload['workload_id']}"):
        page = admin_session.get(cluster.url + path, timeout=10)
        assert page.status_code == 200
        assert XSS_NAME not in page.text, path
        assert "&lt;img src=x onerror=alert(2)&gt;" in page.text, path
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy


def test_another_users_workload_is_not_found(cluster: Cluster, admin, make_user) -> None:
    owner, other = make_user(), make_user()
    workload = owner.create_workload(workload_name="mine-only")
    session = browser_session(cluster, other.username, other.password)
    page = session.get(cluster.url + f"/ui/workloads/{workload['workload_id']}", timeout=10)
    assert page.status_code == 404
    overview = session.get(cluster.url + "/ui/overview", timeout=10)
    assert "mine-only" not in overview.text
    assert session.get(cluster.url + "/ui/users", timeout=10).status_code == 403


def test_logout_revokes_the_cookies_token(cluster: Cluster) -> None:
    session = browser_session(cluster, "admin", ADMIN_PASSWORD)
    token = session.cookies[SESSION_COOKIE]
    without_csrf = session.post(cluster.url + "/ui/logout", timeout=10)
    assert without_csrf.status_code == 401
    answer = session.post(
        cluster.url + "/ui/logout",
        headers={"X-CSRF-TOKEN": session.cookies[CSRF_COOKIE]},
        timeout=10,
    )
    assert (answer.status_code, answer.headers["HX-Redirect"]) == (200, "/ui/login")
    replay = requests.Session()
    replay.cookies.set(SESSION_COOKIE, token)
    page = replay.get(cluster.url + "/", allow_redirects=False, timeout=10)
    assert page.status_code == 303
    api = requests.get(
        cluster.url + "/workloads", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert api.json()["error"] == "token_revoked"
