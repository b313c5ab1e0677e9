"""One real system (controller, API, two workers) for the dashboard's tests."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import ADMIN_PASSWORD, ENGINES, Cluster, cluster_fixture


@pytest.fixture(scope="package")
def engine() -> str:
    """The dashboard's system runs on SQLite: what the pages show reads the same queries
    the API's suites run on both engines."""
    return ENGINES[0]


cluster = cluster_fixture(scope="package")

CSRF_COOKIE = "csrf_access_token"
SESSION_COOKIE = "access_token_cookie"


def browser_session(cluster: Cluster, username: str, password: str) -> requests.Session:
    """A requests session logged in through the dashboard's form, holding its cookies."""
    session = requests.Session()
    answer = session.post(
        cluster.url + "/ui/login",
        data={"username": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    return session


@pytest.fixture
def admin_session(cluster: Cluster) -> requests.Session:
    return browser_session(cluster, "admin", ADMIN_PASSWORD)
