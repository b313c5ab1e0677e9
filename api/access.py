"""Who may touch what: role checks and object-level ownership (others' ids answer 404)."""

from __future__ import annotations

from api.db import get_db
from api.errors import APIError, forbidden, not_found
from api.inputs import parse_id
from api.tokens import Principal, current_principal
from datastore import Row, jobs, workloads


def require_person() -> Principal:
    """Return the caller, refusing worker tokens (they may only move job images)."""
    principal = current_principal()
    if principal.is_worker:
        raise forbidden(
            "worker tokens may only download originals and upload results of their jobs"
        )
    return principal


def require_admin() -> Principal:
    principal = require_person()
    if not principal.is_admin:
        raise forbidden("only an admin may do this")
    return principal


def visible_workload(principal: Principal, workload_id: int) -> Row:
    """Return the workload if the caller may see it; otherwise 404, as if it did not exist."""
    row = workloads.get_workload(get_db(), workload_id)
    if row is None or (
        not principal.is_admin and not principal.is_worker and row["user_id"] != principal.id
    ):
        raise not_found(f"workload {workload_id} does not exist")
    return row


def require_result_of_own_job(principal: Principal, fields: dict, kind: str) -> None:
    """Refuse a worker any upload but the result of a job it holds, before any lookup.

    So a worker token learns nothing about which workloads or images exist: an original
    is always 403, a result of anything but its own running job always the same 409.
    """
    if not principal.is_worker:
        return
    if kind != "filtered":
        raise forbidden("workers may upload only filtered results")
    workload_id = parse_id(fields, "workload_id")
    number = parse_id(fields, "image_id", " (the number of the original)")
    if not jobs.is_assigned(get_db(), workload_id, number, principal.id):
        raise APIError(409, "job_not_assigned", "this job is no longer assigned to you")


def require_assigned_job(principal: Principal, workload_id: int, image_id: int, kind: str) -> None:
    """Refuse a worker anything but the original of an image its job holds.

    The 404 is the same whether or not the workload or the image exists, and is checked
    before either is looked up, so a worker token cannot tell which workloads exist.
    """
    if principal.is_worker and (
        kind != "original" or not jobs.is_assigned(get_db(), workload_id, image_id, principal.id)
    ):
        raise not_found("the image is not part of a job assigned to you")
