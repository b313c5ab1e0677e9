"""Shared checks of the security suite: the error shape, state snapshots, forged tokens, joins."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import count
from pathlib import Path

import requests
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token
from requests.adapters import HTTPAdapter

from tests.outcomes import database

# Every workload of this suite is tagged so that no worker ever runs its jobs: nothing changes
# under the image store behind a test's back, so a snapshot compares exactly.
NO_WORKER = ["nowhere"]

ERROR_KEYS = {"error", "message"}


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    """The answer is `status` with exactly {"error": code, "message": <non-empty text>}."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"].strip(), body
    return body


def assert_error_shape(response: requests.Response) -> None:
    """Any 4xx answer: the JSON error shape, whatever the code."""
    assert 400 <= response.status_code < 500, response.text[:500]
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["message"], str) and body["message"], body


def recorded_cpu(cluster, worker_id: int) -> float:
    """The host CPU figure the datastore holds for a worker (from its latest telemetry)."""
    conn = database(cluster)
    try:
        query = "SELECT cpu_percent FROM workers WHERE id = ?"
        return conn.execute(query, (worker_id,)).fetchone()[0]
    finally:
        conn.close()


@dataclass(frozen=True)
class State:
    """What a refused request must not change: every table a request can write, and each
    stored file with a digest of its bytes."""

    users: tuple
    revoked_tokens: tuple
    login_failures: tuple
    account_login_failures: tuple
    workloads: tuple
    images: tuple
    jobs: tuple
    workers: tuple
    files: frozenset[tuple[str, str]]  # (path in the image store, sha256 or "directory")

    @property
    def temp_files(self) -> list[str]:
        return [path for path, _ in self.files if Path(path).name.startswith(".upload-")]

    def without(self, *tables: str) -> State:
        """This state with `tables` left out of the comparison."""
        return replace(self, **dict.fromkeys(tables, ()))


# The login throttle's counts: a failed password check adds to them by design.
LOGIN_COUNTERS = ("login_failures", "account_login_failures")

_STATE_QUERIES = {
    "users": "SELECT id, username, password_hash, role, token_generation FROM users ORDER BY id",
    "revoked_tokens": "SELECT jti, expires_at FROM revoked_tokens ORDER BY jti",
    "login_failures": "SELECT key, failed_at FROM login_failures ORDER BY key, failed_at",
    "account_login_failures": "SELECT account, failures, last_failed_at"
    " FROM account_login_failures ORDER BY account",
    "workloads": "SELECT id, user_id, name, dir_name, filter, params, tags,"
    " next_image_number FROM workloads ORDER BY id",
    "images": "SELECT workload_id, number, format, width, height FROM images ORDER BY 1, 2",
    "jobs": "SELECT id, workload_id, image_number, status, worker_id, attempts, error"
    " FROM jobs ORDER BY id",
    "workers": "SELECT id, name, tags, rpc_host, rpc_port, token_id FROM workers ORDER BY id",
}


def _stored_files(root: Path) -> frozenset[tuple[str, str]]:
    if not root.exists():
        return frozenset()
    return frozenset(
        (
            str(path.relative_to(root)),
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "directory",
        )
        for path in root.rglob("*")
    )


def snapshot(cluster) -> State:
    conn = database(cluster)
    try:
        tables = {
            name: tuple(map(tuple, conn.execute(sql))) for name, sql in _STATE_QUERIES.items()
        }
    finally:
        conn.close()
    return State(**tables, files=_stored_files(Path(cluster.images_dir)))


def assert_unchanged(cluster, before: State, allowed: tuple[str, ...] = ()) -> None:
    """Nothing changed since `before` but the tables named in `allowed`."""
    after = snapshot(cluster)
    assert after.temp_files == [], after.temp_files
    assert after.without(*allowed) == before.without(*allowed)


def forge_token(
    secret: str,
    identity: str = "1",
    role: str = "admin",
    expires: timedelta = timedelta(hours=1),
) -> str:
    """A token made with flask-jwt-extended, signed with `secret`."""
    app = Flask("forger")
    app.config["JWT_SECRET_KEY"] = secret
    JWTManager(app)
    with app.app_context():
        return create_access_token(
            identity=identity, additional_claims={"role": role}, expires_delta=expires
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(identity: str = "1", role: str = "admin") -> str:
    """A token with `alg: none` and no signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(
        json.dumps(
            {"sub": identity, "role": role, "type": "access", "fresh": False, "jti": "x"}
            | {"iat": 1, "nbf": 1, "exp": 4_000_000_000}
        ).encode()
    )
    return f"{header}.{payload}."


def with_payload(token: str, **claims) -> str:
    """`token` with claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64(json.dumps(body | claims).encode())}.{signature}"


def join_token(cluster) -> str:
    return (Path(cluster.data_dir) / "join_token").read_text().strip()


class _SourceAddressAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


_addresses = count(1)


def fresh_address() -> str:
    """A loopback address no other test of this process has used (the throttle's key)."""
    number = next(_addresses)
    return f"127.0.{100 + number // 250}.{1 + number % 250}"


def session_from(address: str) -> requests.Session:
    """A requests session whose connections come from `address` (any 127.x.y.z works)."""
    session = requests.Session()
    adapter = _SourceAddressAdapter(address)
    session.mount("http://", adapter)
    return session
