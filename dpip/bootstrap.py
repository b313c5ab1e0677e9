"""First start: the datastore, the secrets and the first admin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datastore
from accounts import WeakPassword, ensure_user
from foundation import defaults, secrets
from protocol import UserRole


@dataclass(frozen=True)
class Bootstrap:
    """What a process learns from preparing the data dir."""

    database: Path | str  # the SQLite file, or the PostgreSQL URL
    jwt_secret: str
    join_token: str
    metrics_token: str  # Prometheus's bearer token for GET /metrics
    admin_password: str | None  # set only when the admin was created just now


def prepare_data_dir(data_dir: Path, database_url: str = "") -> Bootstrap:
    """Create the datastore (`database_url`'s, or a SQLite file in the data dir), the
    secrets (mode 0600) and user admin if they are missing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    database = datastore.location(data_dir, database_url)
    conn = datastore.connect(database)
    if isinstance(database, Path):
        database.chmod(0o600)
    try:
        password = secrets.admin_password(data_dir)
        created = ensure_user(conn, defaults.ADMIN_USERNAME, password, UserRole.ADMIN)
    except WeakPassword as e:
        source = f"DPIP_ADMIN_PASSWORD or {data_dir / defaults.ADMIN_PASSWORD_FILE}"
        raise WeakPassword(f"the first admin's password ({source}): {e}") from e
    finally:
        conn.close()
    return Bootstrap(
        database=database,
        jwt_secret=secrets.jwt_secret(data_dir),
        join_token=secrets.join_token(data_dir),
        metrics_token=secrets.metrics_token(data_dir),
        admin_password=password if created else None,
    )
