"""Admit workers: check the join token, record the worker, hand it its credentials."""

from __future__ import annotations

import hmac
import secrets
import sqlite3
import time

from api.tokens import mint_worker_token
from controller.config import ControllerConfig
from datastore import transaction, workers
from dpip import defaults
from protocol import JoinAccepted, JoinRefused, JoinRequest
from scheduler import WorkerRegistration


def admit_worker(
    conn: sqlite3.Connection,
    config: ControllerConfig,
    request: JoinRequest,
    ports: tuple[int, int],
    instance: str,
) -> tuple[JoinAccepted | JoinRefused, WorkerRegistration | None]:
    """Answer a join request; on success also return what the scheduler must learn."""
    if not hmac.compare_digest(
        request.join_token.encode("utf-8", "surrogatepass"), config.join_token.encode()
    ):
        return JoinRefused("wrong join token; get it with 'dpip join-token'"), None
    problem = _check_fields(request)
    if problem:
        return JoinRefused(problem), None
    with transaction(conn) as db:
        worker_id = workers.register_worker(
            db,
            request.worker_name,
            sorted(request.tags),
            request.concurrency,
            request.rpc_host,
            request.rpc_port,
            config.telemetry_interval_ms,
        )
    rpc_key = secrets.token_urlsafe(32)
    accepted = JoinAccepted(
        worker_id=worker_id,
        api_url=config.api_url,
        worker_token=mint_worker_token(
            config.jwt_secret, worker_id, config.worker_token_ttl_seconds
        ),
        rpc_key=rpc_key,
        telemetry_port=ports[0],
        broadcast_port=ports[1],
        telemetry_interval_ms=config.telemetry_interval_ms,
        controller_instance=instance,
        token_expires_at_ms=int((time.time() + config.worker_token_ttl_seconds) * 1000),
        accepted_at_ms=int(time.time() * 1000),
    )
    registration = WorkerRegistration(
        worker_id=worker_id,
        name=request.worker_name,
        tags=frozenset(request.tags),
        concurrency=request.concurrency,
        rpc_host=request.rpc_host,
        rpc_port=request.rpc_port,
        rpc_key=rpc_key,
        running_job_ids=frozenset(request.running_job_ids),
    )
    return accepted, registration


def _check_fields(request: JoinRequest) -> str:
    if not request.worker_name or len(request.worker_name) > defaults.MAX_WORKER_NAME_CHARS:
        return "worker_name must be a non-empty short string"
    if not 1 <= request.concurrency <= 1024:
        return "concurrency must be between 1 and 1024"
    if not 0 < request.rpc_port < 65536:
        return "rpc_port must be a TCP port"
    if any(not isinstance(tag, str) or len(tag) > defaults.MAX_TAG_CHARS for tag in request.tags):
        return "tags must be short strings"
    return ""
