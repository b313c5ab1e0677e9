"""Workloads: create one per filter job batch, list them, and follow their progress."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_jwt_extended import jwt_required

from api.access import require_person, visible_workload
from api.db import get_db
from api.errors import APIError, bad_request
from api.images import image_store
from api.inputs import ID_CONVERTER, iso_time, parse_id, request_fields
from api.openapi import (
    COUNT,
    ID,
    TEXT,
    TEXT_OR_NULL,
    TIME,
    TOO_LARGE,
    WORKER_FORBIDDEN,
    choice,
    component,
    describe,
    fields_body,
    fields_of,
    json_answer,
    object_of,
    query,
)
from api.validation import validate_workload_request
from datastore import Row, transaction, workloads
from foundation import defaults
from imaging import FILTERS
from protocol import JobStatus, WorkloadStatus

bp = Blueprint("workloads", __name__)

TAG_TEXT = {"type": "string", "pattern": f"^[A-Za-z0-9._-]{{1,{defaults.MAX_TAG_CHARS}}}$"}
WORKLOAD_FIELDS = fields_of(
    {
        "workload_name": {
            "type": "string",
            "minLength": 1,
            "maxLength": defaults.MAX_WORKLOAD_NAME_CHARS,
            "description": "unique among your workloads; no `/`, `\\`, `..` or control"
            " characters; `workload-YYYYMMDD-HHMMSS-xxxxxx` when left out",
        },
        "filter": choice(sorted(FILTERS)) | {"default": defaults.DEFAULT_FILTER},
        "radius": {
            "type": "number",
            "minimum": 0,
            "maximum": defaults.MAX_BLUR_RADIUS,
            "default": defaults.DEFAULT_BLUR_RADIUS,
            "description": "the blur's radius (blur only)",
        },
        "tags": {
            "description": "worker tags every job needs: a list, or one comma-separated text",
            "anyOf": [
                {"type": "array", "items": TAG_TEXT, "maxItems": defaults.MAX_TAGS},
                TEXT,
            ],
        },
    }
)
WORKLOAD = component(
    "Workload",
    object_of(
        {
            "workload_id": COUNT,
            "workload_name": TEXT,
            "filter": choice(sorted(FILTERS)),
            "params": {"type": "object", "description": "the filter's parameters"},
            "tags": {"type": "array", "items": TEXT},
            "status": choice(status.value for status in WorkloadStatus),
            "progress": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "the share of its images finished, done or failed",
            },
            "running_jobs": COUNT,
            "images": object_of({"total": COUNT} | {status.value: COUNT for status in JobStatus}),
            "created_at": TIME,
            "radius": {"type": "number", "description": "blur only"},
            "filtered_images": {
                "type": "array",
                "items": COUNT,
                "description": "the numbers of the images whose result is ready (not in lists)",
            },
            "failed_images": {
                "type": "array",
                "items": object_of({"image_id": COUNT, "error": TEXT_OR_NULL}),
                "description": "the images that failed for good, and why (not in lists)",
            },
        },
        optional=("radius", "filtered_images", "failed_images"),
    ),
)


def describe_workload(row: Row, with_lists: bool = True) -> dict[str, Any]:
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
        "progress": round(progress.fraction_finished, 4),
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
@describe(
    "Create a workload",
    "workloads",
    description="Every field is optional: an empty body makes a grayscale workload.",
    body=fields_body(WORKLOAD_FIELDS),
    answers={201: json_answer("The new workload", WORKLOAD)},
    errors={
        400: "`invalid_workload_name`, `unknown_filter`, `invalid_parameter`, `invalid_tags`,"
        " `invalid_json`.",
        403: WORKER_FORBIDDEN,
        409: "`duplicate_workload_name`: you have a workload of that name.",
        413: TOO_LARGE,
    },
)
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
@describe(
    "List workloads",
    "workloads",
    description="Yours (everyone's for an admin), oldest first, without the image lists.",
    answers={
        200: json_answer(
            "The workloads", object_of({"workloads": {"type": "array", "items": WORKLOAD}})
        )
    },
    errors={403: WORKER_FORBIDDEN},
)
@jwt_required()
def list_workloads():
    principal = require_person()
    rows = workloads.list_workloads(get_db(), None if principal.is_admin else principal.id)
    return jsonify(workloads=[describe_workload(row, with_lists=False) for row in rows])


@bp.get(f"/workloads/<{ID_CONVERTER}:workload_id>")
@describe(
    "Get a workload, or wait for its progress",
    "workloads",
    description="With `wait`, a long poll: the answer comes once more images are finished"
    " than `seen` (by default, than when the request came), once the workload is completed,"
    " or after `wait` seconds, whichever is first. Passing the last answer's done + failed as"
    " `seen` misses nothing.",
    parameters=(
        query(
            "wait",
            {"type": "number", "minimum": 0, "maximum": defaults.WORKLOAD_WAIT_MAX_S},
            "seconds to wait for progress",
        ),
        query(
            "seen",
            ID,
            "the count of finished images already seen (with `wait`)",
        ),
    ),
    answers={200: json_answer("The workload, with its image lists", WORKLOAD)},
    errors={
        400: "`invalid_field`: `wait` or `seen`.",
        403: WORKER_FORBIDDEN,
        404: "`not_found`: no such workload, or not yours.",
    },
)
@jwt_required()
def get_workload(workload_id: int):
    principal = require_person()
    row = visible_workload(principal, workload_id)
    wait_s = _wait_seconds(request.args.get("wait"))
    if not wait_s:
        return jsonify(describe_workload(row))
    seen = parse_id(request.args, "seen") if "seen" in request.args else None
    return jsonify(_wait_for_progress(row, wait_s, seen))


@bp.delete(f"/workloads/<{ID_CONVERTER}:workload_id>")
@describe(
    "Delete a workload with its images, results and jobs",
    "workloads",
    description="Its jobs running on workers are dropped: their results are turned away."
    " The rows go first, in one transaction, then the image files (or objects).",
    answers={200: json_answer("The workload is deleted", object_of({"deleted": ID}))},
    errors={
        403: WORKER_FORBIDDEN,
        404: "`not_found`: no such workload, or not yours.",
    },
)
@jwt_required()
def delete_workload(workload_id: int):
    """Rows first, files after, as a user's deletion: a failure between leaves stray files
    (deleted with a retry), never rows without their files."""
    row = visible_workload(require_person(), workload_id)
    with transaction(get_db()) as db:
        workloads.delete_workload(db, row["id"])
    image_store().delete_workload(row["dir_name"])
    return jsonify(deleted=row["id"])


def _wait_seconds(value: str | None) -> float:
    if value is None:
        return 0.0
    limit = defaults.WORKLOAD_WAIT_MAX_S
    try:
        wait_s = float(value)
    except ValueError:
        wait_s = math.nan
    if not 0 <= wait_s <= limit:  # NaN fails too
        raise bad_request(f"'wait' must be seconds, from 0 to {limit:g}", "invalid_field")
    return wait_s


def _finished(body: dict[str, Any]) -> int:
    return body["images"]["done"] + body["images"]["failed"]


def _wait_for_progress(row: Row, wait_s: float, seen: int | None) -> dict[str, Any]:
    """Answer once more images finished than `seen` (by default: than when the request came),
    once the workload is completed, or when `wait_s` ran out, whichever comes first.

    The controller's progress messages wake the request; the recheck interval only bounds
    the delay when one was lost. When too many requests of this process wait already, it
    answers at once, as a plain GET does.
    """
    watch = current_app.extensions["dpip_progress_watch"]
    recheck_s = current_app.config["DPIP"].workload_wait_recheck_s
    deadline = time.monotonic() + wait_s
    with watch.watching(row["id"]) as may_wait:
        while True:
            version = watch.version(row["id"]) if may_wait else 0
            body = describe_workload(row)
            seen = _finished(body) if seen is None else seen
            remaining_s = deadline - time.monotonic()
            if (
                not may_wait
                or watch.stopping
                or remaining_s <= 0
                or _finished(body) > seen
                or body["status"] == WorkloadStatus.COMPLETED.value
            ):
                return body
            watch.wait_for_change(row["id"], version, min(remaining_s, recheck_s))
