"""JWT set-up: who a token belongs to, revocation, and minting user tokens.

A user token carries the user's token generation (claim `gen`); a password change moves the
generation up, which revokes every token minted before it, in every API process at once.
Tokens are minted by `foundation.tokens`, which the controller uses for worker tokens too.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app, g
from flask_jwt_extended import JWTManager, current_user

from api.db import get_db
from api.errors import error_response
from datastore import Row, bearers, workers
from datastore.bearers import Bearer
from foundation import defaults
from foundation.tokens import (
    ALGORITHM,
    GENERATION_CLAIM,
    ROLE_CLAIM,
    WORKER_TOKEN_ID_CLAIM,
    mint_token,
)
from protocol import MEMBERSHIP_ENDED, UserRole

CSRF_CLAIM = "csrf"  # where flask-jwt-extended looks for a cookie token's CSRF value


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


class CachingJWTManager(JWTManager):
    """A JWTManager that verifies each token once, not on every request.

    Decoding a token with PyJWT costs more than the rest of a small request (it parses the
    token four times per request, checking every character). A token's signature and claims
    do not change, so the payload of the last `max_tokens` tokens that passed every check is
    kept, until their expiry; only tokens signed with the API's secret get in. Revocation and
    the user lookup are not cached: they run on every request.
    """

    def __init__(self, app: Flask, max_tokens: int) -> None:
        self._verified: OrderedDict[str, dict] = OrderedDict()
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        super().__init__(app)

    @property
    def tokens_kept(self) -> int:
        return len(self._verified)

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value=None, allow_expired: bool = False
    ) -> dict:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        with self._lock:
            payload = self._verified.get(encoded_token)
            if payload is not None:
                if payload["exp"] > time.time():
                    self._verified.move_to_end(encoded_token)
                    return dict(payload)
                del self._verified[encoded_token]
        payload = super()._decode_jwt_from_config(encoded_token)
        if "exp" in payload:  # every token DPIP mints expires; keep no other
            with self._lock:
                self._verified[encoded_token] = dict(payload)
                if len(self._verified) > self._max_tokens:
                    self._verified.popitem(last=False)
        return payload


def configure_jwt(
    app: Flask, secret: str, ttl_seconds: int, cookie_secure: bool = False
) -> JWTManager:
    """Set flask-jwt-extended to check the tokens `foundation.tokens` mints.

    A token comes in the Authorization header (the JSON API) or in the dashboard's HttpOnly
    cookie. A cookie authorises a POST, PUT, PATCH or DELETE only with the token's CSRF
    value in the X-CSRF-TOKEN header (double submit: a page of another site can make the
    browser send the cookie, but cannot read the CSRF cookie to copy it into the header);
    tokens from /login carry no CSRF value, so in a cookie they authorise no change at all.
    """
    app.config.update(
        JWT_SECRET_KEY=secret,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=ttl_seconds),
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_CSRF_CHECK_FORM=False,
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_SECURE=cookie_secure,
        JWT_SESSION_COOKIE=True,  # gone when the browser closes; the token expires anyway
        JWT_ALGORITHM=ALGORITHM,
        JWT_DECODE_ALGORITHMS=[ALGORITHM],
    )
    return CachingJWTManager(app, defaults.VERIFIED_TOKENS_CACHED)


def mint_user_token(user: Row, with_csrf: bool = False) -> str:
    """Create a token for a user's row, valid until its password changes (or it expires).

    `with_csrf`: for the dashboard's cookie, a random CSRF value (flask-jwt-extended's
    `csrf` claim) that state-changing requests must repeat in a header.
    """
    claims = {GENERATION_CLAIM: user["token_generation"]}
    if with_csrf:
        claims[CSRF_CLAIM] = secrets.token_urlsafe(16)
    return mint_token(
        current_app.config["JWT_SECRET_KEY"],
        user["id"],
        user["role"],
        int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        claims,
    )


def current_principal() -> Principal:
    return current_user


def _bearer(payload: dict) -> Bearer | None:
    """The token's bearer, read once per request: the revocation check and the user lookup
    both need it."""
    read = g.get("dpip_bearer")
    if read is not None and read[0] == payload["jti"]:
        return read[1]
    identity, jti = int(payload["sub"]), payload["jti"]
    if payload.get(ROLE_CLAIM) == UserRole.WORKER.value:
        bearer = bearers.worker_bearer(get_db(), identity, jti, payload.get(WORKER_TOKEN_ID_CLAIM))
    else:  # a token without the generation claim counts as generation 0
        bearer = bearers.user_bearer(get_db(), identity, jti, payload.get(GENERATION_CLAIM, 0))
    g.dpip_bearer = (jti, bearer)
    return bearer


def init_app(app: Flask, secret: str, ttl_seconds: int, cookie_secure: bool = False) -> None:
    """Configure JWTs with lookups in the datastore and errors in the API's JSON shape."""
    jwt = configure_jwt(app, secret, ttl_seconds, cookie_secure)

    @jwt.user_lookup_loader
    def load_principal(_header: dict, payload: dict) -> Principal | None:
        bearer = _bearer(payload)
        return None if bearer is None else Principal(bearer.id, bearer.name, bearer.role)

    @jwt.token_in_blocklist_loader
    def is_revoked(_header: dict, payload: dict) -> bool:
        bearer = _bearer(payload)
        if bearer is None:  # no such worker: its tokens died with it; no such user: 401 later
            return payload.get(ROLE_CLAIM) == UserRole.WORKER.value
        return bearer.revoked

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
