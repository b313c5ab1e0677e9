"""JWT set-up: who a token belongs to, revocation, and minting user tokens.

A user token carries the user's token generation (claim `gen`); a password change moves the
generation up, which revokes every token minted before it, in every API process at once.
Tokens are minted by `foundation.tokens`, which the controller uses for worker tokens too.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from flask_jwt_extended import JWTManager, current_user

from api.db import get_db
from api.errors import error_response
from datastore import users, workers
from foundation.tokens import (
    ALGORITHM,
    GENERATION_CLAIM,
    ROLE_CLAIM,
    WORKER_TOKEN_ID_CLAIM,
    mint_token,
)
from protocol import MEMBERSHIP_ENDED, UserRole


@dataclass(frozen=True)
class Principal:
    """The user or worker a request acts for."""

    id: int
    name: str
    role: UserRole

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN

    @property
    def is_worker(self) -> bool:
        return self.role is UserRole.WORKER


def configure_jwt(app: Flask, secret: str, ttl_seconds: int) -> JWTManager:
    """Set flask-jwt-extended to check the tokens `foundation.tokens` mints."""
    app.config.update(
        JWT_SECRET_KEY=secret,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=ttl_seconds),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM=ALGORITHM,
        JWT_DECODE_ALGORITHMS=[ALGORITHM],
    )
    return JWTManager(app)


def mint_user_token(user: sqlite3.Row) -> str:
    """Create a token for a user's row, valid until its password changes (or it expires)."""
    return mint_token(
        current_app.config["JWT_SECRET_KEY"],
        user["id"],
        user["role"],
        int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        {GENERATION_CLAIM: user["token_generation"]},
    )


def current_principal() -> Principal:
    return current_user


def init_app(app: Flask, secret: str, ttl_seconds: int) -> None:
    """Configure JWTs with lookups in the datastore and errors in the API's JSON shape."""
    jwt = configure_jwt(app, secret, ttl_seconds)

    @jwt.user_lookup_loader
    def load_principal(_header: dict, payload: dict) -> Principal | None:
        identity = int(payload["sub"])
        if payload.get(ROLE_CLAIM) == UserRole.WORKER.value:
            row = workers.get_worker(get_db(), identity)
            return None if row is None else Principal(row["id"], row["name"], UserRole.WORKER)
        row = users.find_user_by_id(get_db(), identity)
        return None if row is None else Principal(row["id"], row["username"], UserRole(row["role"]))

    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict, payload: dict) -> bool:
        if users.is_token_revoked(get_db(), payload["jti"]):
            return True
        if payload.get(ROLE_CLAIM) == UserRole.WORKER.value:
            worker_id, token_id = int(payload["sub"]), payload.get(WORKER_TOKEN_ID_CLAIM)
            return not workers.holds_token(get_db(), worker_id, token_id)
        # A token without the generation claim counts as generation 0.
        current = users.token_generation(get_db(), int(payload["sub"]))
        return current is not None and current != payload.get(GENERATION_CLAIM, 0)

    @jwt.unauthorized_loader
    def missing_token(reason: str):
        return error_response(
            401,
            "missing_token",
            f"{reason}: log in at /login and send 'Authorization: Bearer <token>'",
        )

    @jwt.invalid_token_loader
    def invalid_token(reason: str):
        return error_response(
            401, "invalid_token", f"the token is not valid ({reason}); log in again"
        )

    @jwt.expired_token_loader
    def expired_token(_header: dict, _payload: dict):
        return error_response(401, "token_expired", "the token has expired; log in again")

    @jwt.revoked_token_loader
    def revoked_token(_header: dict, payload: dict):
        if payload.get(ROLE_CLAIM) == UserRole.WORKER.value and not workers.holds_token(
            get_db(), int(payload["sub"]), payload.get(WORKER_TOKEN_ID_CLAIM)
        ):
            return error_response(
                401,
                MEMBERSHIP_ENDED,
                "this worker token died with its membership: the worker was declared dead"
                " or joined again, and its jobs were taken back",
            )
        return error_response(
            401,
            "token_revoked",
            "the token was revoked (by logout or a password change); log in again",
        )

    @jwt.user_lookup_error_loader
    def unknown_principal(_header: dict, _payload: dict):
        return error_response(
            401, "unknown_user", "the token's user no longer exists; log in again"
        )
