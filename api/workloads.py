"""Workloads: create one per filter job batch, list them, and follow their progress."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_jwt_extended import jwt_required

from api.access import require_person, visible_workload
from api.db import get_db
from api.errors import APIError
from api.inputs import ID_CONVERTER, iso_time, request_fields
from api.validation import validate_workload_request
from datastore import transaction, workloads

bp = Blueprint("workloads", __name__)


def describe_workload(row: sqlite3.Row, with_lists: bool = True) -> dict[str, Any]:
    """Render a workload with its derived status and progress."""
    progress = workloads.workload_progress(
        get_db(), row["id"], with_lists, current_app.extensions["dpip_filtered_images"]
    )
    params = json.loads(row["params"])
    body: dict[str, Any] = {
        "workload_id": row["id"],
        "workload_name": row["name"],
        "filter": row["filter"],
        "params": params,
        "tags": json.loads(row["tags"]),
        "status": progress.status.value,
        "running_jobs": progress.running,
        "images": {
            "total": progress.total,
            **{
                status: progress.counts.get(status, 0)
                for status in ("queued", "running", "done", "failed")
            },
        },
        "created_at": iso_time(row["created_at"]),
    }
    if "radius" in params:
        body["radius"] = params["radius"]
    if with_lists:
        body["filtered_images"] = progress.filtered_images
        body["failed_images"] = progress.failed_images
    return body


@bp.post("/workloads")
@jwt_required()
def create_workload():
    principal = require_person()
    spec = validate_workload_request(request_fields())
    try:
        with transaction(get_db()) as db:
            row = workloads.create_workload(
                db, principal.id, spec.name, spec.filter_name, spec.params, spec.tags
            )
    except workloads.WorkloadExists as e:
        raise APIError(409, "duplicate_workload_name", f"{e}; pick another name") from e
    return jsonify(describe_workload(row)), 201


@bp.get("/workloads")
@jwt_required()
def list_workloads():
    principal = require_person()
    rows = workloads.list_workloads(get_db(), None if principal.is_admin else principal.id)
    return jsonify(workloads=[describe_workload(row, with_lists=False) for row in rows])


@bp.get(f"/workloads/<{ID_CONVERTER}:workload_id>")
@jwt_required()
def get_workload(workload_id: int):
    principal = require_person()
    return jsonify(describe_workload(visible_workload(principal, workload_id)))
