"""Log in (HTTP Basic or JSON) and log out (revoke the token for good).

Every password check (a login, or the current password of a password change) goes through
the login throttle (`api.login_throttle`): per (username, address), per address and per
account. A throttled client gets 429 `too_many_attempts` with Retry-After, even with the right
password, so a stolen token cannot guess its owner's password faster than a login can.
"""

from __future__ import annotations

import sqlite3

from flask import Blueprint, abort, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask_jwt_extended import get_jwt, jwt_required

from api.db import get_db
from api.errors import APIError, error_response
from api.inputs import is_utf8, json_body
from api.login_throttle import AccountDelay, LoginThrottle, retry_after_header
from api.tokens import mint_user_token
from datastore import transaction, users

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
        account_delay=AccountDelay(
            max_failures=config.login_account_max_failures,
            first_delay_s=config.login_account_first_delay_s,
            max_delay_s=config.login_account_max_delay_s,
            memory_s=config.login_account_memory_s,
        ),
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


def verify_password(username: str, password: str) -> sqlite3.Row | None:
    """Return the user when the password is theirs, None when not (a counted failure).

    A throttled client is answered 429 with Retry-After at once, before any password check.
    """
    address = request.remote_addr or "unknown"
    throttle = _throttle()
    wait_s = throttle.admit(username, address)
    if wait_s > 0:
        retry_after = retry_after_header(wait_s)
        response = error_response(
            429,
            "too_many_attempts",
            f"too many failed logins; try again in {retry_after} s",
        )
        response.headers["Retry-After"] = retry_after
        abort(response)
    readable = is_utf8(username) and is_utf8(password)
    user = users.authenticate(get_db(), username, password) if readable else None
    if user is None:
        throttle.record_failure(username, address)
    else:
        throttle.record_success(username, address)
    return user


@bp.route("/login", methods=["POST", "GET"])
def login():
    user = verify_password(*_credentials())
    if user is None:
        raise APIError(401, "bad_credentials", "wrong username or password")
    return jsonify(user=user["username"], role=user["role"], token=mint_user_token(user))


@bp.delete("/logout")
@jwt_required()
def logout():
    claims = get_jwt()
    with transaction(get_db()) as db:
        users.revoke_token(db, claims["jti"], claims["exp"])
    return jsonify(logout_message="logged out; this token is revoked for good")
