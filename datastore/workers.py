"""Workers: membership, and the latest telemetry each one sent."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from datastore.connection import Connection, Row


@dataclass(frozen=True)
class Membership:
    """A worker's row after a join: its id, and the membership its token belongs to."""

    worker_id: int
    token_id: str
    renewed: bool  # the worker's live membership goes on (and its token and jobs with it)


def register_worker(
    conn: Connection,
    name: str,
    tags: list[str],
    concurrency: int,
    rpc_host: str,
    rpc_port: int,
    telemetry_interval_ms: int,
    renewing_token_id: str = "",
) -> Membership:
    """Insert or refresh the worker called `name`; a re-join keeps its id.

    The membership goes on only when the worker is alive and presents its current token id
    (a re-join of the same process: a token renewal, a restarted controller); otherwise the
    worker gets a new token id, which ends every token minted before.
    """
    now = time.time()
    worker_id, token_id = conn.execute(
        "INSERT INTO workers (name, tags, concurrency, rpc_host, rpc_port, alive, joined_at,"
        " last_seen, telemetry_interval_ms, token_id) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET tags = excluded.tags,"
        " concurrency = excluded.concurrency, rpc_host = excluded.rpc_host,"
        " rpc_port = excluded.rpc_port, alive = 1, joined_at = excluded.joined_at,"
        " last_seen = excluded.last_seen,"
        " telemetry_interval_ms = excluded.telemetry_interval_ms,"
        # SET expressions read the row as it was, so `alive` here is before this join.
        " token_id = CASE WHEN workers.alive = 1 AND workers.token_id = ?"
        " THEN workers.token_id ELSE excluded.token_id END"
        " RETURNING id, token_id",
        (
            name,
            json.dumps(tags),
            concurrency,
            rpc_host,
            rpc_port,
            now,
            now,
            telemetry_interval_ms,
            secrets.token_urlsafe(16),
            renewing_token_id,
        ),
    ).fetchone()
    return Membership(
        worker_id, token_id, renewed=bool(renewing_token_id) and token_id == renewing_token_id
    )


def holds_token(conn: Connection, worker_id: int, token_id: str | None) -> bool:
    """Whether `token_id` is the membership of a live worker: its tokens die with it."""
    return (
        conn.execute(
            "SELECT 1 FROM workers WHERE id = ? AND alive = 1 AND token_id = ?",
            (worker_id, token_id),
        ).fetchone()
        is not None
    )


@dataclass(frozen=True)
class Load:
    """A worker's latest figures: the host's (placement weighs them) and its own."""

    cpu_percent: float
    memory_percent: float
    gpu: dict[str, Any] | None
    process_cpu_percent: float
    process_rss_bytes: int
    running_jobs: int


def record_telemetry(conn: Connection, worker_id: int, load: Load, seen_at: float) -> None:
    conn.execute(
        "UPDATE workers SET cpu_percent = ?, memory_percent = ?, gpu = ?,"
        " process_cpu_percent = ?, process_rss_bytes = ?, running_jobs = ?, last_seen = ?"
        " WHERE id = ?",
        (
            load.cpu_percent,
            load.memory_percent,
            json.dumps(load.gpu),
            load.process_cpu_percent,
            load.process_rss_bytes,
            load.running_jobs,
            seen_at,
            worker_id,
        ),
    )


def mark_dead(conn: Connection, worker_id: int) -> None:
    conn.execute("UPDATE workers SET alive = 0, running_jobs = 0 WHERE id = ?", (worker_id,))


def list_workers(conn: Connection) -> list[Row]:
    return conn.execute("SELECT * FROM workers ORDER BY id").fetchall()


def is_alive(row: Row, dead_after_intervals: int, now: float | None = None) -> bool:
    """A worker is alive when marked so and heard from within the dead-worker timeout."""
    now = time.time() if now is None else now
    silence_limit = row["telemetry_interval_ms"] * dead_after_intervals / 1000
    return bool(row["alive"]) and now - row["last_seen"] <= silence_limit
