"""Who a token belongs to and whether it still counts: one query per authenticated request."""

from __future__ import annotations

from dataclasses import dataclass

from datastore.connection import Connection
from protocol import UserRole


@dataclass(frozen=True)
class Bearer:
    """The user or worker a token names, and whether the token is revoked."""

    id: int
    name: str
    role: UserRole
    revoked: bool


def user_bearer(conn: Connection, user_id: int, jti: str, generation: int) -> Bearer | None:
    """The user, its token revoked by logout or by a password change since (which moves the
    user's generation up); None for no such user."""
    row = conn.execute(
        "SELECT id, username, role, token_generation != ?"
        " OR EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) FROM users WHERE id = ?",
        (generation, jti, user_id),
    ).fetchone()
    return None if row is None else Bearer(row[0], row[1], UserRole(row[2]), bool(row[3]))


def worker_bearer(
    conn: Connection, worker_id: int, jti: str, token_id: str | None
) -> Bearer | None:
    """The worker, its token revoked unless it is the membership of the worker alive now
    (a worker's tokens die with its membership); None for no such worker."""
    row = conn.execute(
        "SELECT id, name, (alive = 1 AND token_id = ?) IS NOT TRUE"
        " OR EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) FROM workers WHERE id = ?",
        (token_id, jti, worker_id),
    ).fetchone()
    return None if row is None else Bearer(row[0], row[1], UserRole.WORKER, bool(row[2]))
