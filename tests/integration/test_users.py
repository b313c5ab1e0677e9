"""User administration over the API, and what a deleted user's token can still do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, Client, image_bytes

pytestmark = pytest.mark.both_engines


def test_admin_creates_lists_and_reads_users(admin):
    response = admin.post("/users", json={"username": "carol", "password": "carol-secret-1"})
    assert response.status_code == 201
    assert response.json() == {"username": "carol", "role": "user"}
    names = {u["username"]: u["role"] for u in admin.get("/users").json()["users"]}
    assert names["carol"] == "user"
    assert names["admin"] == "admin"
    assert admin.get("/users/carol").json()["role"] == "user"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "admin", "password": "long-enough-1"}, 409, "duplicate_username"),
        ({"password": "long-enough-1"}, 400, "invalid_username"),
        ({"username": "dave", "password": "short"}, 400, "invalid_password"),
        ({"username": "dave", "password": "long-enough-1", "role": "root"}, 400, "invalid_role"),
    ],
)
def test_bad_user_creation(admin, body, status, code):
    response = admin.post("/users", json=body)
    assert response.status_code == status
    assert response.json()["error"] == code
    if body.get("username") == "dave":
        assert admin.get("/users/dave").status_code == 404


def test_plain_users_cannot_administer(make_user):
    user = make_user()
    assert user.get("/users").status_code == 403
    assert (
        user.post("/users", json={"username": "eve", "password": "long-enough-1"}).status_code
        == 403
    )
    assert user.delete("/users/admin").status_code == 403
    assert user.get("/users/admin").status_code == 404
    assert user.get(f"/users/{user.username}").json()["username"] == user.username


def test_user_changes_own_password(cluster, make_user):
    user = make_user()
    fields = {"password": "brand-new-pass", "current_password": user.password}
    response = user.request("PUT", f"/users/{user.username}", json=fields)
    assert response.status_code == 200
    renewed = Client(cluster.url, response.json()["token"])  # the old token is revoked
    assert cluster.login(user.username, "brand-new-pass").get("/status").status_code == 200
    promote = renewed.request("PUT", f"/users/{user.username}", json={"role": "admin"})
    assert promote.status_code == 403


def test_deleted_users_token_stops_working(admin, make_user):
    user = make_user()
    workload = user.create_workload(workload_name="doomed")
    assert admin.delete(f"/users/{user.username}").status_code == 200
    response = user.get("/workloads")
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_user"
    assert admin.get(f"/workloads/{workload['workload_id']}").status_code == 404
    assert admin.delete("/users/admin").status_code == 400


def test_deleting_a_user_deletes_their_workloads_image_files(cluster, admin, make_user):
    user = make_user()
    workload_id = user.create_workload(workload_name="doomed")["workload_id"]
    assert user.upload(workload_id, image_bytes()).status_code == 201
    user.wait_completed(workload_id)  # no result upload races the deletion
    [directory] = Path(cluster.images_dir).glob(f"{workload_id}-*")
    assert (directory / "0.original.png").is_file()
    assert admin.delete(f"/users/{user.username}").json() == {"deleted": user.username}
    assert not directory.exists()
    response = admin.delete(f"/users/{user.username}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_admin_password_works(cluster):
    assert cluster.login("admin", ADMIN_PASSWORD).get("/users").status_code == 200
