"""Every kind of bad token on every kind of endpoint; worker and user tokens out of their lane."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import image_bytes
from tests.security.conftest import Actor, create_actor
from tests.security.helpers import (
    assert_error,
    assert_unchanged,
    database,
    forge_token,
    snapshot,
    unsigned_token,
    with_payload,
)

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


WRONG_SECRET = "not-the-cluster-secret-but-long-enough-for-hs256"


def _secret(cluster) -> str:
    return (Path(cluster.data_dir) / "jwt_secret").read_text().strip()


def _user_id(cluster, name: str) -> str:
    conn = database(cluster)
    try:
        return str(conn.execute("SELECT id FROM users WHERE username = ?", (name,)).fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tokens(cluster, admin, alice) -> dict[str, str | None]:
    """Authorization header values, by kind; each answers 401 with the code in TOKEN_CASES."""
    secret = _secret(cluster)
    alice_id = _user_id(cluster, alice.name)
    revoked = cluster.login(alice.name, alice.password)
    assert revoked.delete("/logout").status_code == 200
    doomed = create_actor(cluster, admin, "doomed")
    assert admin.delete(f"/users/{doomed.name}").status_code == 200
    return {
        "none": None,
        "empty-bearer": "Bearer ",
        "garbage": "Bearer not-a-jwt",
        "three-garbage-parts": "Bearer aaa.bbb.ccc",
        "basic-scheme": "Basic YWRtaW46YWRtaW4=",
        "token-scheme": f"Token {alice.client.token}",
        "wrong-signature": "Bearer " + forge_token(WRONG_SECRET, alice_id, "admin"),
        "alg-none": "Bearer " + unsigned_token(alice_id, "admin"),
        "tampered-role": "Bearer " + with_payload(alice.client.token, role="admin"),
        "tampered-subject": "Bearer " + with_payload(alice.client.token, sub="1"),
        "expired": "Bearer " + forge_token(secret, alice_id, "user", timedelta(seconds=-10)),
        "revoked-by-logout": f"Bearer {revoked.token}",
        "deleted-user": f"Bearer {doomed.client.token}",
    }


TOKEN_CASES = [
    ("none", "missing_token"),
    ("empty-bearer", "invalid_token"),
    ("garbage", "invalid_token"),
    ("three-garbage-parts", "invalid_token"),
    ("basic-scheme", "missing_token"),
    ("token-scheme", "missing_token"),
    ("wrong-signature", "invalid_token"),
    ("alg-none", "invalid_token"),
    ("tampered-role", "invalid_token"),
    ("tampered-subject", "invalid_token"),
    ("expired", "token_expired"),
    ("revoked-by-logout", "token_revoked"),
    ("deleted-user", "unknown_user"),
]

Send = Callable[[requests.Session, str, dict, Actor], requests.Response]

ENDPOINTS: dict[str, Send] = {
    "GET /workloads": lambda s, url, h, a: s.get(url + "/workloads", headers=h),
    "POST /workloads": lambda s, url, h, a: s.post(
        url + "/workloads", headers=h, json={"workload_name": "by-a-bad-token"}
    ),
    "GET /workloads/id": lambda s, url, h, a: s.get(f"{url}/workloads/{a.workload_id}", headers=h),
    "POST /images": lambda s, url, h, a: s.post(
        url + "/images",
        headers=h,
        data={"workload_id": a.workload_id},
        files={"data": ("x.png", image_bytes())},
    ),
    "GET /images/0": lambda s, url, h, a: s.get(
        url + "/images/0", headers=h, params={"workload_id": a.workload_id}
    ),
    "GET /status": lambda s, url, h, a: s.get(url + "/status", headers=h),
    "POST /users": lambda s, url, h, a: s.post(
        url + "/users", headers=h, json={"username": "minted", "password": "long-enough"}
    ),
    "PATCH /users/name": lambda s, url, h, a: s.patch(
        f"{url}/users/{a.name}", headers=h, json={"password": "hijacked-password"}
    ),
    "DELETE /logout": lambda s, url, h, a: s.delete(url + "/logout", headers=h),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize(("kind", "code"), TOKEN_CASES)
def test_bad_token_answers_401_and_changes_nothing(cluster, tokens, alice, kind, code, endpoint):
    header = tokens[kind]
    before = snapshot(cluster)
    with requests.Session() as session:
        response = ENDPOINTS[endpoint](
            session, cluster.url, {"Authorization": header} if header else {}, alice
        )
    assert_error(response, 401, code)
    assert_unchanged(cluster, before)  # this includes every password hash and role


WORKER_CASES = [
    pytest.param(lambda w, a: w.get("/workloads"), 403, "forbidden", id="list-workloads"),
    pytest.param(
        lambda w, a: w.post("/workloads", json={"workload_name": "by-worker"}),
        403,
        "forbidden",
        id="create-workload",
    ),
    pytest.param(
        lambda w, a: w.get(f"/workloads/{a.workload_id}"), 403, "forbidden", id="get-workload"
    ),
    pytest.param(lambda w, a: w.get("/status"), 403, "forbidden", id="status"),
    pytest.param(lambda w, a: w.get("/users"), 403, "forbidden", id="list-users"),
    pytest.param(
        lambda w, a: w.post("/users", json={"username": "by-worker", "password": "long-enough"}),
        403,
        "forbidden",
        id="create-user",
    ),
    pytest.param(lambda w, a: w.get(f"/users/{a.name}"), 403, "forbidden", id="get-user"),
    pytest.param(
        lambda w, a: w.request("PATCH", f"/users/{a.name}", json={"password": "hijacked-pw"}),
        403,
        "forbidden",
        id="change-password",
    ),
    pytest.param(lambda w, a: w.delete(f"/users/{a.name}"), 403, "forbidden", id="delete-user"),
    pytest.param(
        lambda w, a: w.delete(f"/workloads/{a.workload_id}"),
        403,
        "forbidden",
        id="delete-workload",
    ),
    pytest.param(
        lambda w, a: w.upload(a.workload_id, image_bytes()), 403, "forbidden", id="upload-original"
    ),
    pytest.param(
        lambda w, a: w.get("/images/0", params={"workload_id": a.workload_id}),
        404,
        "not_found",
        id="download-unassigned-original",
    ),
    pytest.param(
        lambda w, a: w.get("/images/0", params={"workload_id": a.workload_id, "type": "filtered"}),
        404,
        "not_found",
        id="download-filtered",
    ),
    pytest.param(
        lambda w, a: w.post(
            "/images",
            data={"workload_id": a.workload_id, "type": "filtered", "image_id": 0},
            files={"data": ("x.png", image_bytes())},
        ),
        409,
        "job_not_assigned",
        id="upload-result-of-unassigned-job",
    ),
]


@pytest.mark.parametrize(("make_request", "status", "code"), WORKER_CASES)
def test_worker_token_on_user_endpoints(cluster, worker_client, alice, make_request, status, code):
    before = snapshot(cluster)
    assert_error(make_request(worker_client, alice), status, code)
    assert_unchanged(cluster, before)


def test_a_worker_token_cannot_tell_which_workloads_exist(cluster, worker_client, alice):
    """Regression test: a missing workload and one whose job is not the worker's answered
    two different 404 messages, so a worker token could probe which workload ids exist."""
    before = snapshot(cluster)
    existing = worker_client.get("/images/0", params={"workload_id": alice.workload_id})
    missing = worker_client.get("/images/0", params={"workload_id": 2**62})
    assert_error(existing, 404, "not_found")
    assert_error(missing, 404, "not_found")
    assert existing.json() == missing.json()
    assert_unchanged(cluster, before)


@pytest.mark.parametrize("kind", ["original", "filtered"])
def test_a_worker_upload_cannot_tell_which_workloads_exist(cluster, worker_client, alice, kind):
    """Regression test: an upload to a missing workload answered 404, to another's job 409
    (403 for an original), so a worker token could probe which workload ids exist."""
    before = snapshot(cluster)
    answers = [
        worker_client.post(
            "/images",
            data={"workload_id": workload_id, "type": kind, "image_id": 0},
            files={"data": ("x.png", image_bytes())},
        )
        for workload_id in (alice.workload_id, 2**62)
    ]
    status, code = (403, "forbidden") if kind == "original" else (409, "job_not_assigned")
    for answer in answers:
        assert_error(answer, status, code)
    assert answers[0].json() == answers[1].json()
    assert_unchanged(cluster, before)


@pytest.mark.parametrize("owner", ["own", "other", "admin"])
def test_user_token_cannot_upload_a_filtered_result(cluster, admin, alice, bob, owner):
    """Only the worker running the job may: a user, even an admin, gets 403 (404 if not theirs)."""
    client, workload_id, status, code = {
        "own": (alice.client, alice.workload_id, 403, "forbidden"),
        "other": (alice.client, bob.workload_id, 404, "not_found"),
        "admin": (admin, bob.workload_id, 403, "forbidden"),
    }[owner]
    before = snapshot(cluster)
    response = client.post(
        "/images",
        data={"workload_id": workload_id, "type": "filtered", "image_id": 0},
        files={"data": ("x.png", image_bytes())},
    )
    assert_error(response, status, code)
    assert_unchanged(cluster, before)
    assert (
        bob.client.get("/images/0", params={"workload_id": bob.workload_id, "type": "filtered"})
    ).status_code == 404
