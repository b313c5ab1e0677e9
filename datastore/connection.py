"""Open the datastore: SQLite in WAL mode (the default, a file in the data dir, with its
schema and upgrades here) or PostgreSQL (a `postgresql://` URL, datastore/postgres.py)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Union

from datastore.dialect import SQLITE
from datastore.errors import StoreError
from foundation import defaults

if TYPE_CHECKING:
    from datastore.postgres import PostgresConnection, PostgresPool, PostgresRow

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS workloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    dir_name TEXT NOT NULL UNIQUE,
    filter TEXT NOT NULL,
    params TEXT NOT NULL,
    tags TEXT NOT NULL,
    next_image_number INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE IF NOT EXISTS images (
    workload_id INTEGER NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (workload_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    tags TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    rpc_host TEXT NOT NULL,
    rpc_port INTEGER NOT NULL,
    alive INTEGER NOT NULL,
    joined_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    telemetry_interval_ms INTEGER NOT NULL,
    cpu_percent REAL NOT NULL DEFAULT 0,
    memory_percent REAL NOT NULL DEFAULT 0,
    gpu TEXT,
    running_jobs INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workload_id INTEGER NOT NULL,
    image_number INTEGER NOT NULL,
    status TEXT NOT NULL,
    worker_id INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    UNIQUE (workload_id, image_number),
    FOREIGN KEY (workload_id, image_number)
        REFERENCES images(workload_id, number) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, id);
CREATE INDEX IF NOT EXISTS jobs_by_workload_status ON jobs(workload_id, status, image_number);
CREATE INDEX IF NOT EXISTS jobs_by_worker ON jobs(worker_id, status);
CREATE TABLE IF NOT EXISTS login_failures (
    key BLOB NOT NULL,
    failed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_key ON login_failures(key, failed_at);
CREATE INDEX IF NOT EXISTS login_failures_by_time ON login_failures(failed_at);
-- Jobs per workload and status, kept by triggers in the same transaction as the change,
-- so a workload's progress is read in O(1) instead of counted over its jobs.
CREATE TABLE IF NOT EXISTS job_counts (
    workload_id INTEGER NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (workload_id, status)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS job_counts_on_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (workload_id, status, count) VALUES (NEW.workload_id, NEW.status, 1)
        ON CONFLICT (workload_id, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS job_counts_on_update AFTER UPDATE OF status ON jobs
WHEN OLD.status != NEW.status BEGIN
    UPDATE job_counts SET count = count - 1
        WHERE workload_id = OLD.workload_id AND status = OLD.status;
    INSERT INTO job_counts (workload_id, status, count) VALUES (NEW.workload_id, NEW.status, 1)
        ON CONFLICT (workload_id, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS job_counts_on_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET count = count - 1
        WHERE workload_id = OLD.workload_id AND status = OLD.status;
END;
-- Counts for the jobs that exist without them (none do in a new datastore).
INSERT INTO job_counts (workload_id, status, count)
    SELECT workload_id, status, COUNT(*) FROM jobs WHERE true GROUP BY workload_id, status
    ON CONFLICT (workload_id, status) DO NOTHING;
COMMIT;
"""

# SCHEMA is version 1, kept as `user_version` 0; each entry here moves a datastore one
# version up, its statements run in one write transaction that also sets `user_version`.
UPGRADES: tuple[tuple[str, ...], ...] = (
    # 2: when a workload's first job started, so its status never goes back to `scheduling`.
    (
        "ALTER TABLE workloads ADD COLUMN started_at REAL",
        "UPDATE workloads SET started_at ="
        " (SELECT MIN(started_at) FROM jobs WHERE jobs.workload_id = workloads.id)",
        "CREATE TRIGGER workload_started AFTER UPDATE OF status ON jobs"
        " WHEN NEW.status = 'running' BEGIN"
        " UPDATE workloads SET started_at = NEW.started_at"
        " WHERE id = NEW.workload_id AND started_at IS NULL; END",
    ),
    # 3: the worker's own load (its process and pool), beside the host's.
    (
        "ALTER TABLE workers ADD COLUMN process_cpu_percent REAL NOT NULL DEFAULT 0",
        "ALTER TABLE workers ADD COLUMN process_rss_bytes INTEGER NOT NULL DEFAULT 0",
    ),
    # 4: a password change revokes the user's tokens (their generation falls behind), and
    # each account's failed logins, from any address, delay its next login.
    (
        "ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE account_login_failures (account BLOB PRIMARY KEY,"
        " failures INTEGER NOT NULL, last_failed_at REAL NOT NULL) WITHOUT ROWID",
        "CREATE INDEX account_login_failures_by_time ON account_login_failures(last_failed_at)",
    ),
    # 5: the membership a worker's token belongs to; the token dies with it (NULL: none yet).
    ("ALTER TABLE workers ADD COLUMN token_id TEXT",),
    # 6: what the client called each original (untrusted text, kept as data only) and its
    # size in bytes; NULL where unknown (no name sent, or stored before this version).
    (
        "ALTER TABLE images ADD COLUMN filename TEXT",
        "ALTER TABLE images ADD COLUMN size INTEGER",
    ),
    # 7: counts of cluster events for /metrics (datastore/metric_counts.py), kept across
    # restarts and shared by every API process and the controller.
    (
        "CREATE TABLE metric_counts (name TEXT NOT NULL, label TEXT NOT NULL,"
        " value REAL NOT NULL, PRIMARY KEY (name, label)) WITHOUT ROWID",
    ),
    # 8: each worker's recent telemetry, one sample per step (datastore/worker_history.py),
    # so the dashboard's sparklines survive a restart and agree across API processes; and
    # the jobs each worker finished, counted by a trigger as they finish (a lifetime count:
    # deleting a workload does not take it back), instead of counted over the jobs per read.
    (
        "CREATE TABLE worker_samples (worker_id INTEGER NOT NULL"
        " REFERENCES workers(id) ON DELETE CASCADE, step INTEGER NOT NULL, at REAL NOT NULL,"
        " cpu_percent REAL NOT NULL, memory_percent REAL NOT NULL, gpu_percent REAL,"
        " PRIMARY KEY (worker_id, step)) WITHOUT ROWID",
        "ALTER TABLE workers ADD COLUMN jobs_done INTEGER NOT NULL DEFAULT 0",
        "UPDATE workers SET jobs_done ="
        " (SELECT COUNT(*) FROM jobs WHERE worker_id = workers.id AND status = 'done')",
        "CREATE TRIGGER worker_jobs_done AFTER UPDATE OF status ON jobs"
        " WHEN NEW.status = 'done' AND OLD.status != 'done' AND NEW.worker_id IS NOT NULL"
        " BEGIN UPDATE workers SET jobs_done = jobs_done + 1 WHERE id = NEW.worker_id; END",
    ),
)
SCHEMA_VERSION = 1 + len(UPGRADES)


WAL_SWITCH_TIMEOUT_S = 30.0  # as long as the busy timeout of every other statement


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SqliteConnection(sqlite3.Connection):
    """SQLite's connection, saying which SQL it speaks (`datastore/dialect.py`)."""

    dialect = SQLITE


# PostgreSQL's side is named, not imported: psycopg loads only with a PostgreSQL URL.
Connection = Union[SqliteConnection, "PostgresConnection"]
Row = Union[sqlite3.Row, "PostgresRow"]  # read by position or by column name


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the datastore to WAL mode.

    Switching a new file takes an exclusive lock, and SQLite answers "locked" at once
    instead of waiting, so two processes creating the datastore together (the API and
    the controller at first start) would fail; the loser retries until the winner is done.
    """
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT_S
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # start-up only: the lock is held for milliseconds
    if mode != "wal":
        raise sqlite3.OperationalError(f"cannot use WAL mode (journal mode stays {mode})")


def location(data_dir: Path, database_url: str = "") -> Path | str:
    """Where the datastore is: `database_url` (PostgreSQL) when one is given, otherwise
    the SQLite file in `data_dir`."""
    return database_url or data_dir / defaults.DATABASE_FILE


def is_postgres(location: Path | str) -> bool:
    """Whether `location` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def connect(location: Path | str) -> Connection:
    """Open the datastore at `location`, creating its schema: a PostgreSQL URL, or the path
    of a SQLite file (in WAL mode). Either autocommits outside `transaction`."""
    if is_postgres(location):
        from datastore import postgres  # psycopg loads only here: see `Connection`

        return postgres.connect(location)
    return _connect_sqlite(Path(location))


def session_pool(url: str, max_sessions: int, application: str) -> PostgresPool:
    """A pool of sessions on the PostgreSQL datastore at `url` (whose schema exists), named
    `application` in the server's views; SQLite has no use for one (see `api/db.py`)."""
    from datastore import postgres  # psycopg loads only here: see `Connection`

    return postgres.PostgresPool(url, max_sessions, application)


def _connect_sqlite(path: Path) -> SqliteConnection:
    try:
        conn = sqlite3.connect(
            path,
            timeout=30,
            isolation_level=None,
            check_same_thread=False,
            factory=SqliteConnection,
        )
        conn.row_factory = sqlite3.Row
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        if _schema_version(conn) < SCHEMA_VERSION:
            _upgrade(conn)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open datastore {path}: {e}") from e
    return conn


def _schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION.

    Each step is one write transaction that re-reads the version first, so two processes
    opening an old or new datastore at once cannot both apply a step.
    """
    if _schema_version(conn) == 0:
        conn.executescript(SCHEMA)  # IF NOT EXISTS throughout: also completes a version 0
    for version, statements in enumerate(UPGRADES, start=2):
        with transaction(conn):
            if _schema_version(conn) >= version:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """Run the block as one write transaction, begun so that it never deadlocks."""
    conn.execute(conn.dialect.begin)
    if conn.dialect.write_lock:
        conn.execute(conn.dialect.write_lock)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
