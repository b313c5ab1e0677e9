"""Workers: membership, and the latest telemetry each one sent."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def register_worker(
    conn: sqlite3.Connection,
    name: str,
    tags: list[str],
    concurrency: int,
    rpc_host: str,
    rpc_port: int,
    telemetry_interval_ms: int,
) -> int:
    """Insert or refresh the worker called `name`; a re-join keeps its id."""
    now = time.time()
    return conn.execute(
        "INSERT INTO workers (name, tags, concurrency, rpc_host, rpc_port, alive, joined_at,"
        " last_seen, telemetry_interval_ms) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET tags = excluded.tags,"
        " concurrency = excluded.concurrency, rpc_host = excluded.rpc_host,"
        " rpc_port = excluded.rpc_port, alive = 1, joined_at = excluded.joined_at,"
        " last_seen = excluded.last_seen,"
        " telemetry_interval_ms = excluded.telemetry_interval_ms"
        " RETURNING id",
        (name, json.dumps(tags), concurrency, rpc_host, rpc_port, now, now, telemetry_interval_ms),
    ).fetchone()[0]


def record_telemetry(
    conn: sqlite3.Connection,
    worker_id: int,
    cpu_percent: float,
    memory_percent: float,
    gpu: dict[str, Any] | None,
    running_jobs: int,
    seen_at: float,
) -> None:
    conn.execute(
        "UPDATE workers SET cpu_percent = ?, memory_percent = ?, gpu = ?, running_jobs = ?,"
        " last_seen = ? WHERE id = ?",
        (cpu_percent, memory_percent, json.dumps(gpu), running_jobs, seen_at, worker_id),
    )


def mark_dead(conn: sqlite3.Connection, worker_id: int) -> None:
    conn.execute("UPDATE workers SET alive = 0, running_jobs = 0 WHERE id = ?", (worker_id,))


def get_worker(conn: sqlite3.Connection, worker_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM workers WHERE id = ?", (worker_id,)).fetchone()


def list_workers(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM workers ORDER BY id").fetchall()


def is_alive(row: sqlite3.Row, dead_after_intervals: int, now: float | None = None) -> bool:
    """A worker is alive when marked so and heard from within the dead-worker timeout."""
    now = time.time() if now is None else now
    silence_limit = row["telemetry_interval_ms"] * dead_after_intervals / 1000
    return bool(row["alive"]) and now - row["last_seen"] <= silence_limit
