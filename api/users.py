"""User administration: admins manage everyone; users may change their own password.

A password change revokes every token of the user. Changing your own password needs the
current one (checked under the login throttle) and answers a new token in place of the
caller's; an admin resetting another user's password needs only the new one.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_jwt_extended import jwt_required

import accounts
from api.access import require_admin, require_person
from api.auth import PERSON_ROLES, THROTTLED, verify_password
from api.db import get_db
from api.errors import APIError, bad_request, not_found
from api.images import image_store
from api.inputs import is_utf8, request_fields
from api.openapi import (
    TEXT,
    TOO_LARGE,
    WORKER_FORBIDDEN,
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

bp = Blueprint("users", __name__)

MAX_USERNAME_CHARS = 64
PASSWORD = {"type": "string", "minLength": accounts.MIN_PASSWORD_CHARS}
ROLE = choice(PERSON_ROLES)
USER = component("User", object_of({"username": TEXT, "role": ROLE}))
USER_WITH_TOKEN = component(
    "UserWithToken",
    object_of(
        {
            "username": TEXT,
            "role": ROLE,
            "token": {
                "type": "string",
                "description": "after a change of your own password: your new token",
            },
        },
        optional=("token",),
    ),
)
NEW_USER_FIELDS = fields_of(
    {
        "username": {"type": "string", "minLength": 1, "maxLength": MAX_USERNAME_CHARS},
        "password": PASSWORD,
        "role": ROLE | {"default": UserRole.USER.value},
    },
    required=("username", "password"),
)
CHANGED_FIELDS = fields_of(
    {
        "password": PASSWORD,
        "role": ROLE,
        "current_password": {
            "type": "string",
            "description": "needed to change your own password",
        },
    }
)
NO_SUCH_USER = "`not_found`: no such user (or, for a user, anyone but themselves)."
ADMINS_ONLY = "`forbidden`: not an admin, or a worker token."


def describe_user(row: Row) -> dict:
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


def _existing(username: str) -> Row:
    row = users.find_user_by_name(get_db(), username)
    if row is None:
        raise not_found(f"user {username!r} does not exist")
    return row


@bp.get("/users")
@describe(
    "List users (admins)",
    "users",
    answers={200: json_answer("The users", object_of({"users": {"type": "array", "items": USER}}))},
    errors={403: ADMINS_ONLY},
)
@jwt_required()
def list_users():
    require_admin()
    return jsonify(users=[describe_user(row) for row in users.list_users(get_db())])


@bp.post("/users")
@describe(
    "Create a user (admins)",
    "users",
    body=fields_body(NEW_USER_FIELDS),
    body_required=True,
    answers={201: json_answer("The new user", USER)},
    errors={
        400: "`invalid_username`, `invalid_password`, `invalid_role`, `invalid_json`.",
        403: ADMINS_ONLY,
        409: "`duplicate_username`: the name is taken.",
        413: TOO_LARGE,
    },
)
@jwt_required()
def create_user():
    require_admin()
    fields = request_fields()
    username = fields.get("username")
    if (
        not isinstance(username, str)
        or not username.isprintable()
        or not 0 < len(username) <= MAX_USERNAME_CHARS
        or not is_utf8(username)
    ):
        raise bad_request(
            f"'username' must be 1-{MAX_USERNAME_CHARS} printable characters", "invalid_username"
        )
    password = accounts.check_password(fields.get("password"))
    role = _role(fields.get("role", UserRole.USER.value))
    with transaction(get_db()) as db:
        row = accounts.create_user(db, username, password, role)
    return jsonify(describe_user(row)), 201


@bp.get("/users/<username>")
@describe(
    "Get a user",
    "users",
    description="Admins may get anyone; users only themselves.",
    answers={200: json_answer("The user", USER)},
    errors={403: WORKER_FORBIDDEN, 404: NO_SUCH_USER},
)
@jwt_required()
def get_user(username: str):
    principal = require_person()
    if not principal.is_admin and principal.name != username:
        raise not_found(f"user {username!r} does not exist")
    return jsonify(describe_user(_existing(username)))


@bp.route("/users/<username>", methods=["PUT", "PATCH"])
@describe(
    "Change a user's password or role",
    "users",
    description="PUT and PATCH are the same partial update. Users may change their own"
    " password (with `current_password`, checked like a login); only admins change roles"
    " or reset others' passwords. A password change revokes every token of the user.",
    body=fields_body(CHANGED_FIELDS),
    body_required=True,
    answers={200: json_answer("The user", USER_WITH_TOKEN)},
    errors={
        400: "`missing_field`, `invalid_password`, `invalid_role`, `cannot_demote_self`,"
        " `invalid_json`.",
        403: "`forbidden`: a role change by a non-admin, or a worker token; `wrong_password`:"
        " the `current_password` is wrong.",
        404: NO_SUCH_USER,
        413: TOO_LARGE,
        429: THROTTLED,
    },
)
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
@describe(
    "Delete a user with all their workloads and images (admins)",
    "users",
    answers={200: json_answer("The user is deleted", object_of({"deleted": TEXT}))},
    errors={
        400: "`cannot_delete_self`.",
        403: ADMINS_ONLY,
        404: "`not_found`: no such user.",
    },
)
@jwt_required()
def delete_user(username: str):
    principal = require_admin()
    if principal.name == username:
        raise bad_request("you cannot delete yourself", "cannot_delete_self")
    accounts.delete_user(get_db(), image_store(), username)
    return jsonify(deleted=username)
