"""Log in (HTTP Basic or JSON) and log out (revoke the token for good).

Failed logins are throttled per (username, address) and per address (`api.login_throttle`):
a throttled client gets 429 `too_many_attempts` with Retry-After, even with the right password.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask_jwt_extended import get_jwt, jwt_required

from api.db import get_db
from api.errors import APIError, error_response
from api.inputs import is_utf8, json_body
from api.login_throttle import LoginThrottle, retry_after_header
from api.tokens import mint_token
from datastore import transaction, users
from protocol import UserRole

bp = Blueprint("auth", __name__)

THROTTLE_EXTENSION = "dpip_login_throttle"


@bp.record_once
def _install_throttle(state: BlueprintSetupState) -> None:
    config = state.app.config["DPIP"]
    state.app.extensions[THROTTLE_EXTENSION] = LoginThrottle(
        get_db,
        max_failures=config.login_max_failures,
        window_s=config.login_window_s,
        max_failures_per_address=config.login_max_failures_per_address,
    )


def _throttle() -> LoginThrottle:
    return current_app.extensions[THROTTLE_EXTENSION]


def _credentials() -> tuple[str, str]:
    if request.authorization and request.authorization.type == "basic":
        return request.authorization.username or "", request.authorization.password or ""
    body = json_body()
    if not isinstance(body, dict):
        body = request.form
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise APIError(
            400,
            "missing_credentials",
            'send HTTP Basic credentials (curl -u user:pass) or JSON {"username", "password"}',
        )
    return username, password


@bp.route("/login", methods=["POST", "GET"])
def login():
    username, password = _credentials()
    address = request.remote_addr or "unknown"
    throttle = _throttle()
    wait_s = throttle.retry_after(username, address)
    if wait_s > 0:
        retry_after = retry_after_header(wait_s)
        response = error_response(
            429,
            "too_many_attempts",
            f"too many failed logins; try again in {retry_after} s",
        )
        response.headers["Retry-After"] = retry_after
        return response
    readable = is_utf8(username) and is_utf8(password)
    user = users.authenticate(get_db(), username, password) if readable else None
    if user is None:
        throttle.record_failure(username, address)
        raise APIError(401, "bad_credentials", "wrong username or password")
    throttle.record_success(username, address)
    token = mint_token(user["id"], UserRole(user["role"]))
    return jsonify(user=user["username"], role=user["role"], token=token)


@bp.delete("/logout")
@jwt_required()
def logout():
    claims = get_jwt()
    with transaction(get_db()) as db:
        users.revoke_token(db, claims["jti"], claims["exp"])
    return jsonify(logout_message="logged out; this token is revoked for good")
