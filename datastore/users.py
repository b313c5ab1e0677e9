"""Users and revoked tokens: passwords are kept only as slow-KDF hashes."""

from __future__ import annotations

import functools
import time

from werkzeug.security import check_password_hash, generate_password_hash

from datastore.connection import Connection, Row
from foundation.errors import DPIPError
from protocol import UserRole


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("no user has this password")


class UserExists(DPIPError, ValueError):
    """Raised when a username is already taken."""


def create_user(
    conn: Connection, username: str, password: str, role: UserRole = UserRole.USER
) -> Row:
    """Add a user with a hashed password and return its row."""
    try:
        conn.execute(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
            (username, generate_password_hash(password), role.value, time.time()),
        )
    except conn.dialect.integrity_error as e:
        raise UserExists(f"user {username!r} already exists") from e
    return find_user_by_name(conn, username)


def ensure_user(conn: Connection, username: str, password: str, role: UserRole) -> bool:
    """Create the user unless it exists; return whether it was created."""
    try:
        create_user(conn, username, password, role)
    except UserExists:
        return False
    return True


def find_user_by_name(conn: Connection, username: str) -> Row | None:
    if "\x00" in username:  # no account's: PostgreSQL's text refuses NUL, even to compare
        return None
    return conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()


def authenticate(conn: Connection, username: str, password: str) -> Row | None:
    """Return the user when the password matches its hash."""
    user = find_user_by_name(conn, username)
    # An unknown user costs the same hash check, so timing does not tell who exists.
    stored_hash = user["password_hash"] if user is not None else _dummy_hash()
    if not check_password_hash(stored_hash, password) or user is None:
        return None
    return user


def list_users(conn: Connection) -> list[Row]:
    return conn.execute("SELECT * FROM users ORDER BY id").fetchall()


def delete_user(conn: Connection, username: str) -> bool:
    """Delete the user and (by cascade) its workloads, images and jobs."""
    return conn.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0


def update_user(
    conn: Connection,
    username: str,
    password: str | None = None,
    role: UserRole | None = None,
) -> None:
    """Change a user's password and/or role; a new password revokes the user's tokens."""
    if password is not None:
        conn.execute(
            "UPDATE users SET password_hash = ?, token_generation = token_generation + 1"
            " WHERE username = ?",
            (generate_password_hash(password), username),
        )
    if role is not None:
        conn.execute("UPDATE users SET role = ? WHERE username = ?", (role.value, username))


def revoke_token(conn: Connection, jti: str, expires_at: float) -> None:
    """Record a token as revoked until it would have expired anyway."""
    conn.execute(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (jti, expires_at),
    )
    conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", (time.time(),))
