"""Cluster secrets: taken from the environment or created once in the data dir with mode 0600."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from foundation import defaults
from foundation.errors import DPIPError


class SecretError(DPIPError):
    """Raised when a secret is empty or cannot be read."""


def read_secret(path: Path) -> str:
    """Return the secret stored at `path`; an empty one is refused, never used."""
    try:
        value = path.read_text().strip()
    except OSError as e:
        raise SecretError(f"cannot read {path}: {e.strerror}") from e
    if not value:
        raise SecretError(f"{path} is empty; delete it to have a new secret made")
    return value


def secret_from_env(env_var: str) -> str | None:
    """Return `env_var`'s value, None when it is unset; set but blank is refused."""
    value = os.environ.get(env_var)
    if value is not None and not value.strip():
        raise SecretError(f"{env_var} is set but empty")
    return value


def read_or_create_secret(path: Path, env_var: str, nbytes: int = 32) -> str:
    """Return the secret from `env_var`, else from `path`, creating it there on first use.

    The new secret is written whole to a temp file, then hard-linked to `path`, which fails
    if `path` exists: so a process never reads a half-written secret, and when several
    start at once exactly one secret wins and all of them read it.
    """
    from_env = secret_from_env(env_var)
    if from_env is not None:
        return from_env
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(nbytes) + "\n")
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(temp, path)
        finally:
            temp.unlink()
    return read_secret(path)


def jwt_secret(data_dir: Path) -> str:
    """Return the key that signs API tokens (shared by the API and the controller)."""
    return read_or_create_secret(data_dir / defaults.JWT_SECRET_FILE, "DPIP_JWT_SECRET", 48)


def join_token(data_dir: Path) -> str:
    """Return the token a worker must present to join the cluster."""
    return read_or_create_secret(data_dir / defaults.JOIN_TOKEN_FILE, "DPIP_JOIN_TOKEN")


def admin_password(data_dir: Path) -> str:
    """Return the first admin's password (generated and stored on first use)."""
    return read_or_create_secret(data_dir / defaults.ADMIN_PASSWORD_FILE, "DPIP_ADMIN_PASSWORD", 12)


def metrics_token(data_dir: Path) -> str:
    """Return the bearer token that may scrape GET /metrics (besides an admin's token)."""
    return read_or_create_secret(data_dir / defaults.METRICS_TOKEN_FILE, "DPIP_METRICS_TOKEN")
