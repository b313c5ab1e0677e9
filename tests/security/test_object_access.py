"""Object-level access: user B can neither see nor touch user A's workloads, images or account."""

from __future__ import annotations

import pytest

from tests.conftest import image_bytes
from tests.security.helpers import assert_error, assert_unchanged, snapshot

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


B_AGAINST_A = [
    pytest.param(lambda b, a: b.get(f"/workloads/{a.workload_id}"), 404, id="read-workload"),
    pytest.param(
        lambda b, a: b.get("/images/0", params={"workload_id": a.workload_id}),
        404,
        id="read-original",
    ),
    pytest.param(
        lambda b, a: b.get("/images/0", params={"workload_id": a.workload_id, "type": "filtered"}),
        404,
        id="read-filtered",
    ),
    pytest.param(
        lambda b, a: b.request("GET", "/images/0", data={"workload_id": a.workload_id}),
        404,
        id="read-original-id-in-form",
    ),
    pytest.param(
        lambda b, a: b.request("GET", "/images/0", json={"workload_id": a.workload_id}),
        404,
        id="read-original-id-in-json",
    ),
    pytest.param(lambda b, a: b.upload(a.workload_id, image_bytes()), 404, id="upload"),
    pytest.param(lambda b, a: b.get(f"/users/{a.name}"), 404, id="read-account"),
    pytest.param(
        lambda b, a: b.request("PATCH", f"/users/{a.name}", json={"password": "hijacked-pw"}),
        404,
        id="change-password",
    ),
    pytest.param(
        lambda b, a: b.request("PUT", f"/users/{a.name}", json={"role": "user"}),
        404,
        id="change-role",
    ),
    pytest.param(lambda b, a: b.delete(f"/users/{a.name}"), 403, id="delete-account"),
]


@pytest.mark.parametrize(("make_request", "status"), B_AGAINST_A)
def test_b_cannot_reach_as_things(cluster, alice, bob, make_request, status):
    before = snapshot(cluster)
    assert_error(
        make_request(bob.client, alice), status, "not_found" if status == 404 else "forbidden"
    )
    assert_unchanged(cluster, before)


def test_as_workload_answers_like_one_that_does_not_exist(alice, bob):
    """No oracle: another user's id and a missing id give the same answer."""
    missing = alice.workload_id + 1_000_000
    for path, params in [
        ("/workloads/{}", {}),
        ("/images/0", {"workload_id": "{}"}),
    ]:
        answers = []
        for wid in (alice.workload_id, missing):
            response = bob.client.get(
                path.format(wid), params={k: v.format(wid) for k, v in params.items()}
            )
            body = assert_error(response, 404, "not_found")
            answers.append(body["message"].replace(str(wid), "N"))
        assert answers[0] == answers[1]


def test_bs_lists_are_empty_of_as_things(alice, bob):
    listed = bob.client.get("/workloads").json()["workloads"]
    assert [w["workload_id"] for w in listed] == [bob.workload_id]
    fresh = alice.client.create_workload(workload_name="alice-active", tags=["nowhere"])
    assert alice.client.upload(fresh["workload_id"], image_bytes()).status_code == 201
    active = bob.client.get("/status").json()["active_workloads"]
    assert {w["workload_id"] for w in active} == {bob.workload_id}
    assert alice.workload_id in {
        w["workload_id"] for w in alice.client.get("/status").json()["active_workloads"]
    }


def test_a_new_user_sees_nothing(cluster, admin, make_user, alice):
    carol = make_user()
    assert carol.get("/workloads").json() == {"workloads": []}
    assert carol.get("/status").json()["active_workloads"] == []
    assert_error(carol.get(f"/workloads/{alice.workload_id}"), 404, "not_found")


def test_as_account_still_works_after_bs_attempts(cluster, alice, bob):
    bob.client.request("PATCH", f"/users/{alice.name}", json={"password": "hijacked-pw"})
    assert cluster.login(alice.name, alice.password).get("/workloads").status_code == 200
    body = alice.client.get(f"/workloads/{alice.workload_id}").json()
    assert body["images"]["total"] == 1
