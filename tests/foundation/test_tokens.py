"""Tokens minted by foundation.tokens are what the API's flask-jwt-extended set-up accepts."""

from __future__ import annotations

import time

import jwt
import pytest
from flask import Flask
from flask_jwt_extended import decode_token

from api.tokens import CachingJWTManager, configure_jwt
from foundation.tokens import ALGORITHM, ROLE_CLAIM, WORKER_TOKEN_ID_CLAIM, mint_token
from tests.conftest import wait_until

SECRET = "a-test-secret-of-enough-length-for-hs256-0123456789"


@pytest.fixture
def api_app() -> Flask:
    app = Flask("tokens-test")
    configure_jwt(app, SECRET, 3600)
    return app


def test_a_minted_worker_token_is_read_by_the_apis_jwt_setup(api_app):
    token = mint_token(SECRET, 7, "worker", 60, {WORKER_TOKEN_ID_CLAIM: "membership-1"})
    with api_app.app_context():
        claims = decode_token(token)
    assert claims["sub"] == "7"
    assert claims[ROLE_CLAIM] == "worker"
    assert claims[WORKER_TOKEN_ID_CLAIM] == "membership-1"
    assert claims["exp"] - claims["iat"] == 60


def test_tokens_get_a_fresh_id_each(api_app):
    first, second = (mint_token(SECRET, 1, "user", 60) for _ in range(2))
    with api_app.app_context():
        assert decode_token(first)["jti"] != decode_token(second)["jti"]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda: mint_token("another-secret-of-enough-length-0123456789", 1, "admin", 60),
            id="other-secret",
        ),
        pytest.param(lambda: mint_token(SECRET, 1, "admin", -10), id="expired"),
        pytest.param(
            lambda: jwt.encode({"sub": "1", "role": "admin", "type": "access"}, SECRET, "HS384"),
            id="other-algorithm",
        ),
    ],
)
def test_the_api_refuses_tokens_it_would_not_mint(api_app, forge):
    with api_app.app_context(), pytest.raises(jwt.PyJWTError):
        decode_token(forge())


def test_the_algorithm_is_hs256():
    header = jwt.get_unverified_header(mint_token(SECRET, 1, "user", 60))
    assert header["alg"] == ALGORITHM == "HS256"


def test_a_verified_token_is_refused_once_it_expires(api_app):
    token = mint_token(SECRET, 1, "user", 1)
    with api_app.app_context():
        expires_at = decode_token(token)["exp"]  # verified, and kept
        wait_until(lambda: time.time() > expires_at + 0.05, 5, "the token's expiry")
        with pytest.raises(jwt.ExpiredSignatureError):
            decode_token(token)


def test_the_verified_tokens_kept_are_bounded():
    app = Flask("tokens-bound-test")
    app.config.update(JWT_SECRET_KEY=SECRET, JWT_DECODE_ALGORITHMS=[ALGORITHM])
    manager = CachingJWTManager(app, max_tokens=2)
    tokens = [mint_token(SECRET, user_id, "user", 60) for user_id in range(5)]
    with app.app_context():
        for _ in range(2):
            assert [decode_token(token)["sub"] for token in tokens] == ["0", "1", "2", "3", "4"]
    assert manager.tokens_kept == 2
