"""User administration: admins manage everyone; users may change their own password.

A password change revokes every token of the user. Changing your own password needs the
current one (checked under the login throttle) and answers a new token in place of the
caller's; an admin resetting another user's password needs only the new one.
"""

from __future__ import annotations

import sqlite3

from flask import Blueprint, jsonify
from flask_jwt_extended import jwt_required

import accounts
from api.access import require_admin, require_person
from api.auth import verify_password
from api.db import get_db
from api.errors import APIError, bad_request, not_found
from api.images import image_store
from api.inputs import is_utf8, request_fields
from api.tokens import mint_user_token
from datastore import transaction, users
from protocol import UserRole

bp = Blueprint("users", __name__)


def describe_user(row: sqlite3.Row) -> dict:
    return {"username": row["username"], "role": row["role"]}


def _role(value) -> UserRole:
    if value not in (UserRole.ADMIN.value, UserRole.USER.value):
        raise bad_request("'role' must be 'admin' or 'user'", "invalid_role")
    return UserRole(value)


def _check_current_password(username: str, value) -> None:
    if not isinstance(value, str) or not value:
        raise bad_request(
            "to change your own password, send your 'current_password' too", "missing_field"
        )
    if verify_password(username, value) is None:
        raise APIError(403, "wrong_password", "'current_password' is not your password")


def _existing(username: str) -> sqlite3.Row:
    row = users.find_user_by_name(get_db(), username)
    if row is None:
        raise not_found(f"user {username!r} does not exist")
    return row


@bp.get("/users")
@jwt_required()
def list_users():
    require_admin()
    return jsonify(users=[describe_user(row) for row in users.list_users(get_db())])


@bp.post("/users")
@jwt_required()
def create_user():
    require_admin()
    fields = request_fields()
    username = fields.get("username")
    if (
        not isinstance(username, str)
        or not username.isprintable()
        or not 0 < len(username) <= 64
        or not is_utf8(username)
    ):
        raise bad_request("'username' must be 1-64 printable characters", "invalid_username")
    password = accounts.check_password(fields.get("password"))
    role = _role(fields.get("role", UserRole.USER.value))
    with transaction(get_db()) as db:
        row = accounts.create_user(db, username, password, role)
    return jsonify(describe_user(row)), 201


@bp.get("/users/<username>")
@jwt_required()
def get_user(username: str):
    principal = require_person()
    if not principal.is_admin and principal.name != username:
        raise not_found(f"user {username!r} does not exist")
    return jsonify(describe_user(_existing(username)))


@bp.route("/users/<username>", methods=["PUT", "PATCH"])
@jwt_required()
def update_user(username: str):
    principal = require_person()
    if not principal.is_admin and principal.name != username:
        raise not_found(f"user {username!r} does not exist")
    _existing(username)
    fields = request_fields()
    password = accounts.check_password(fields["password"]) if "password" in fields else None
    role = None
    if "role" in fields:
        require_admin()
        role = _role(fields["role"])
        if principal.name == username and role is not UserRole.ADMIN:
            raise bad_request("you cannot take the admin role from yourself", "cannot_demote_self")
    if password is None and role is None:
        raise bad_request("send 'password' and/or 'role'", "missing_field")
    own_password = password is not None and principal.name == username
    if own_password:
        _check_current_password(username, fields.get("current_password"))
    with transaction(get_db()) as db:
        users.update_user(db, username, password, role)
    row = _existing(username)
    if own_password:  # the caller's token is revoked with the others: here is its successor
        return jsonify(describe_user(row) | {"token": mint_user_token(row)})
    return jsonify(describe_user(row))


@bp.delete("/users/<username>")
@jwt_required()
def delete_user(username: str):
    principal = require_admin()
    if principal.name == username:
        raise bad_request("you cannot delete yourself", "cannot_delete_self")
    accounts.delete_user(get_db(), image_store(), username)
    return jsonify(deleted=username)
