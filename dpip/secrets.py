"""Cluster secrets: taken from the environment or created once in the data dir with mode 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dpip import defaults


def read_or_create_secret(path: Path, env_var: str, nbytes: int = 32) -> str:
    """Return the secret from `env_var`, else from `path`, creating it there on first use."""
    from_env = os.environ.get(env_var)
    if from_env:
        return from_env
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def jwt_secret(data_dir: Path) -> str:
    """Return the key that signs API tokens (shared by the API and the controller)."""
    return read_or_create_secret(data_dir / defaults.JWT_SECRET_FILE, "DPIP_JWT_SECRET", 48)


def join_token(data_dir: Path) -> str:
    """Return the token a worker must present to join the cluster."""
    return read_or_create_secret(data_dir / defaults.JOIN_TOKEN_FILE, "DPIP_JOIN_TOKEN")


def admin_password(data_dir: Path) -> str:
    """Return the first admin's password (generated and stored on first use)."""
    return read_or_create_secret(data_dir / defaults.ADMIN_PASSWORD_FILE, "DPIP_ADMIN_PASSWORD", 12)
