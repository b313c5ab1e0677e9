"""Log in (HTTP Basic or JSON) and log out (revoke the token for good)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_jwt_extended import get_jwt, jwt_required

from api.db import get_db
from api.errors import APIError
from api.tokens import mint_token
from datastore import transaction, users
from protocol import UserRole

bp = Blueprint("auth", __name__)


def _credentials() -> tuple[str, str]:
    if request.authorization and request.authorization.type == "basic":
        return request.authorization.username or "", request.authorization.password or ""
    body = request.get_json(silent=True)
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
    user = users.authenticate(get_db(), username, password)
    if user is None:
        raise APIError(401, "bad_credentials", "wrong username or password")
    token = mint_token(user["id"], UserRole(user["role"]))
    return jsonify(user=user["username"], role=user["role"], token=token)


@bp.delete("/logout")
@jwt_required()
def logout():
    claims = get_jwt()
    with transaction(get_db()) as db:
        users.revoke_token(db, claims["jti"], claims["exp"])
    return jsonify(logout_message="logged out; this token is revoked for good")
