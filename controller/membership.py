"""Admit workers: check the join proof, record the worker, hand it its credentials."""

from __future__ import annotations

import secrets
import time

from controller.config import ControllerConfig
from datastore import Connection, transaction, workers
from foundation import defaults
from foundation.tokens import WORKER_TOKEN_ID_CLAIM, mint_token
from protocol import JoinAccepted, JoinProofs, JoinRefused, JoinRequest, UserRole, proves
from scheduler import WorkerRegistration


def admit_worker(
    conn: Connection,
    config: ControllerConfig,
    request: JoinRequest,
    proofs: JoinProofs | None,
    ports: tuple[int, int],
    instance: str,
) -> tuple[JoinAccepted | JoinRefused, WorkerRegistration | None]:
    """Answer a join request; on success also return what the scheduler must learn.

    `proofs` are those of the challenge the request answers (None: unknown, used or expired).
    Once the worker proved it knows the join token, the reply carries the controller's proof.
    """
    if proofs is None:
        return JoinRefused("no such join challenge (expired or answered); join again"), None
    if not proves(proofs.worker(), request.proof):
        return JoinRefused("wrong join token; get it with 'dpip join-token'"), None
    problem = _check_fields(request)
    if problem:
        return proofs.sign(JoinRefused(problem)), None
    with transaction(conn) as db:
        membership = workers.register_worker(
            db,
            request.worker_name,
            sorted(request.tags),
            request.concurrency,
            request.rpc_host,
            request.rpc_port,
            config.telemetry_interval_ms,
            renewing_token_id=request.token_id,
        )
    worker_id = membership.worker_id
    rpc_key = secrets.token_urlsafe(32)
    accepted = JoinAccepted(
        worker_id=worker_id,
        api_url=config.api_url,
        worker_token=mint_token(
            config.jwt_secret,
            worker_id,
            UserRole.WORKER.value,
            config.worker_token_ttl_seconds,
            {WORKER_TOKEN_ID_CLAIM: membership.token_id},
        ),
        rpc_key=rpc_key,
        telemetry_port=ports[0],
        broadcast_port=ports[1],
        telemetry_interval_ms=config.telemetry_interval_ms,
        controller_instance=instance,
        token_expires_at_ms=int((time.time() + config.worker_token_ttl_seconds) * 1000),
        accepted_at_ms=int(time.time() * 1000),
        token_id=membership.token_id,
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
        # Jobs it runs stay its own only on a renewed membership: a new one ended the
        # tokens they hold. Either way they hold its slots until they end.
        membership_renewed=membership.renewed,
        prefetch=request.prefetch,
    )
    return proofs.sign(accepted), registration


def _check_fields(request: JoinRequest) -> str:
    # Printable only: a NUL, which PostgreSQL's text refuses, or a lone surrogate, which
    # has no UTF-8, would fail the join's write instead of being refused.
    name = request.worker_name
    if not name or len(name) > defaults.MAX_WORKER_NAME_CHARS or not name.isprintable():
        return "worker_name must be a non-empty short string of printable characters"
    if not 1 <= request.concurrency <= 1024:
        return "concurrency must be between 1 and 1024"
    if not 0 <= request.prefetch <= defaults.MAX_WORKER_PREFETCH:
        return f"prefetch must be between 0 and {defaults.MAX_WORKER_PREFETCH}"
    if not 0 < request.rpc_port < 65536:
        return "rpc_port must be a TCP port"
    if any(
        not isinstance(tag, str) or len(tag) > defaults.MAX_TAG_CHARS or not tag.isprintable()
        for tag in request.tags
    ):
        return "tags must be short strings of printable characters"
    return ""
