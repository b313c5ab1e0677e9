"""Who may touch what: role checks and object-level ownership (others' ids answer 404)."""

from __future__ import annotations

import sqlite3

from api.db import get_db
from api.errors import forbidden, not_found
from api.tokens import Principal, current_principal
from datastore import workloads


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


def visible_workload(principal: Principal, workload_id: int) -> sqlite3.Row:
    """Return the workload if the caller may see it; otherwise 404, as if it did not exist."""
    row = workloads.get_workload(get_db(), workload_id)
    if row is None or (
        not principal.is_admin and not principal.is_worker and row["user_id"] != principal.id
    ):
        raise not_found(f"workload {workload_id} does not exist")
    return row
