"""Log in (HTTP Basic or JSON) and log out (revoke the token for good).

Every password check (a login, or the current password of a password change) goes through
the login throttle (`api.login_throttle`): per (username, address), per address and per
account. A throttled client gets 429 `too_many_attempts` with Retry-After, even with the right
password, so a stolen token cannot guess its owner's password faster than a login can.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask_jwt_extended import get_jwt, jwt_required

from api.db import get_db
from api.errors import APIError, error_response
from api.inputs import is_utf8, json_body
from api.login_throttle import AccountDelay, LoginThrottle, retry_after_header
from api.openapi import (
    LOGIN,
    TEXT,
    TOO_LARGE,
    choice,
    component,
    describe,
    fields_body,
    fields_of,
    json_answer,
    object_of,
)
from api.tokens import mint_user_token
from datastore import Row, transaction, users
from protocol import UserRole

bp = Blueprint("auth", __name__)

PERSON_ROLES = [UserRole.ADMIN.value, UserRole.USER.value]
CREDENTIALS = fields_of({"username": TEXT, "password": TEXT})
LOGGED_IN = component(
    "LoggedIn",
    object_of(
        {
            "user": TEXT,
            "role": choice(PERSON_ROLES),
            "token": {"type": "string", "description": "send it as `Authorization: Bearer`"},
        }
    ),
)
THROTTLED = (
    "`too_many_attempts`: too many failed logins from this address or for this account;"
    " wait the Retry-After seconds (even the right password is refused until then)."
)

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


def verify_password(username: str, password: str) -> Row | None:
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
@describe(
    "Log in",
    "auth",
    description="Send the username and password as HTTP Basic credentials, or as a JSON"
    " object or form fields. Failed logins are throttled per (username, address), per address"
    " and per account.",
    security=LOGIN,
    body=fields_body(CREDENTIALS),
    answers={200: json_answer("A token for the user (one hour by default)", LOGGED_IN)},
    errors={
        400: "`missing_credentials`: no Basic credentials, nor a text username and password.",
        401: "`bad_credentials`: wrong username or password.",
        413: TOO_LARGE,
        429: THROTTLED,
    },
)
def login():
    user = verify_password(*_credentials())
    if user is None:
        raise APIError(401, "bad_credentials", "wrong username or password")
    return jsonify(user=user["username"], role=user["role"], token=mint_user_token(user))


@bp.delete("/logout")
@describe(
    "Log out: revoke this token for good",
    "auth",
    answers={200: json_answer("The token is revoked", object_of({"logout_message": TEXT}))},
)
@jwt_required()
def logout():
    revoke_current_token()
    return jsonify(logout_message="logged out; this token is revoked for good")


def revoke_current_token() -> None:
    """Revoke the request's token for good, in every API process (DELETE /logout, and the
    dashboard's log-out)."""
    claims = get_jwt()
    with transaction(get_db()) as db:
        users.revoke_token(db, claims["jti"], claims["exp"])
