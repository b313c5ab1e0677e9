"""DPIP's tokens: HS256 JWTs signed with the cluster's secret.

Every token is minted here, by the API (user tokens) and by the controller (worker tokens,
at join), with the claims flask-jwt-extended expects of an access token; the API's
flask-jwt-extended set-up checks them with the algorithm and claim names defined here.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

ALGORITHM = "HS256"
ROLE_CLAIM = "role"
GENERATION_CLAIM = "gen"  # a user's token generation: a password change moves it up
WORKER_TOKEN_ID_CLAIM = "tid"  # a worker's membership: the token dies with it


def mint_token(
    secret: str, subject: int, role: str, ttl_seconds: int, claims: dict[str, Any] | None = None
) -> str:
    """Sign an access token for `subject` (a user or worker id) with `role`, valid `ttl_seconds`."""
    now = int(time.time())
    payload = {
        "sub": str(subject),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "type": "access",  # flask-jwt-extended's token type claim
        "fresh": False,
        ROLE_CLAIM: role,
        **(claims or {}),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
