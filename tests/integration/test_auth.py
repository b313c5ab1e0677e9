"""Login, logout and every kind of bad token, against the real API."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token

from tests.conftest import ADMIN_PASSWORD, Client

pytestmark = pytest.mark.both_engines


def test_login_with_basic_auth_json_form_and_get(cluster):
    basic = requests.post(cluster.url + "/login", auth=("admin", ADMIN_PASSWORD), timeout=10)
    as_json = requests.post(
        cluster.url + "/login", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10
    )
    as_form = requests.post(
        cluster.url + "/login", data={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10
    )
    with_get = requests.get(cluster.url + "/login", auth=("admin", ADMIN_PASSWORD), timeout=10)
    for response in (basic, as_json, as_form, with_get):
        assert response.status_code == 200
        assert response.json()["user"] == "admin"
        assert Client(cluster.url, response.json()["token"]).get("/status").status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"auth": ("admin", "wrong-password")}, 401, "bad_credentials"),
        ({"auth": ("nobody", "whatever-password")}, 401, "bad_credentials"),
        ({"json": {"username": "admin"}}, 400, "missing_credentials"),
        ({}, 400, "missing_credentials"),
    ],
)
def test_login_refusals(cluster, kwargs, status, code):
    response = requests.post(cluster.url + "/login", timeout=10, **kwargs)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["message"]


def test_logout_revokes_the_token_for_good(cluster):
    client = cluster.login("admin", ADMIN_PASSWORD)
    response = client.delete("/logout")
    assert response.status_code == 200
    assert "logout_message" in response.json()
    again = client.get("/status")
    assert again.status_code == 401
    assert again.json()["error"] == "token_revoked"


def _token_signed_with(secret: str, expires: timedelta, role: str = "admin") -> str:
    app = Flask("forger")
    app.config["JWT_SECRET_KEY"] = secret
    JWTManager(app)
    with app.app_context():
        return create_access_token(
            identity="1", additional_claims={"role": role}, expires_delta=expires
        )


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_token"),
        ("Bearer not-a-jwt", "invalid_token"),
        ("Basic YWRtaW46YWRtaW4=", "missing_token"),
    ],
)
def test_bad_tokens_answer_401(cluster, header, code):
    headers = {"Authorization": header} if header else {}
    response = requests.get(cluster.url + "/workloads", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == code


def test_token_with_wrong_signature_is_refused(cluster):
    token = _token_signed_with(
        "not-the-cluster-secret-but-long-enough-for-hs256", timedelta(hours=1)
    )
    response = Client(cluster.url, token).get("/workloads")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_expired_token_is_refused(cluster):
    secret = (cluster.data_dir / "jwt_secret").read_text().strip()
    token = _token_signed_with(secret, timedelta(seconds=-10))
    response = Client(cluster.url, token).get("/workloads")
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"


def test_secrets_are_private_files(cluster):
    for name in ("jwt_secret", "join_token"):
        assert (cluster.data_dir / name).stat().st_mode & 0o077 == 0
