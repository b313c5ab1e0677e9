"""Open the SQLite datastore in WAL mode and create its schema."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dpip.errors import DPIPError

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
-- A datastore made before job_counts existed: count what is there (a no-op when new).
INSERT INTO job_counts (workload_id, status, count)
    SELECT workload_id, status, COUNT(*) FROM jobs WHERE true GROUP BY workload_id, status
    ON CONFLICT (workload_id, status) DO NOTHING;
COMMIT;
"""

# The table added last: a datastore without it gets the rest of the schema, and since every
# statement is IF NOT EXISTS, a datastore made by an older version gets only what it lacks.
# The script is one write transaction, so two processes that open a new datastore at once
# cannot interleave (the second finds everything there).
_NEWEST_TABLE = "job_counts"


WAL_SWITCH_TIMEOUT_S = 30.0  # as long as the busy timeout of every other statement


class StoreError(DPIPError):
    """Raised when the datastore cannot be opened or written."""


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


def connect(path: Path) -> sqlite3.Connection:
    """Open the datastore at `path` (creating its schema), in WAL mode with autocommit."""
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (_NEWEST_TABLE,)
        ).fetchone():
            conn.executescript(SCHEMA)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open datastore {path}: {e}") from e
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block as one write transaction, taken up front so it never deadlocks."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
