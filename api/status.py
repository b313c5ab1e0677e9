"""System status: time, the caller's active workloads and every worker's latest telemetry."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask_jwt_extended import jwt_required

from api.access import require_person
from api.db import get_db
from api.inputs import iso_time
from api.openapi import (
    COUNT,
    TEXT,
    TIME,
    WORKER_FORBIDDEN,
    choice,
    component,
    describe,
    json_answer,
    object_of,
)
from datastore import Row, workers, workloads
from protocol import WorkloadStatus

bp = Blueprint("status", __name__)

SYSTEM_NAME = "DPIP"

PERCENT = {"type": "number", "minimum": 0}
ACTIVE_WORKLOAD = object_of(
    {
        "workload_id": COUNT,
        "workload_name": TEXT,
        "status": choice(status.value for status in WorkloadStatus),
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "running_jobs": COUNT,
    }
)
WORKER = object_of(
    {
        "name": TEXT,
        "tags": {"type": "array", "items": TEXT},
        "cpu": PERCENT,
        "memory": PERCENT,
        "gpu": {
            "description": "the host's first NVIDIA GPU, if any",
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"utilization_percent": PERCENT, "memory_percent": PERCENT},
                },
                {"type": "null"},
            ],
        },
        "host": object_of({"cpu_percent": PERCENT, "memory_percent": PERCENT}),
        "process": object_of({"cpu_percent": PERCENT, "rss_mb": PERCENT}),
        "running_jobs": COUNT,
        "concurrency": COUNT,
        "last_seen": TIME,
        "alive": {"type": "boolean"},
    }
)
STATUS = component(
    "Status",
    object_of(
        {
            "system_name": TEXT,
            "server_time": TIME,
            "active_workloads": {"type": "array", "items": ACTIVE_WORKLOAD},
            "workers": {"type": "array", "items": WORKER},
        }
    ),
)


@bp.get("/status")
@describe(
    "The system's status",
    "status",
    description="The time, the caller's active workloads (everyone's for an admin) and every"
    " worker with its latest telemetry.",
    answers={200: json_answer("The status", STATUS)},
    errors={403: WORKER_FORBIDDEN},
)
@jwt_required()
def status():
    principal = require_person()
    db = get_db()
    dead_after = current_app.config["DPIP"].dead_after_intervals
    active = [
        {
            "workload_id": workload_id,
            "workload_name": name,
            "status": progress.status.value,
            "progress": round(progress.fraction_finished, 4),
            "running_jobs": progress.running,
        }
        for workload_id, name, progress in workloads.active_workloads(
            db, None if principal.is_admin else principal.id
        )
    ]
    return jsonify(
        system_name=SYSTEM_NAME,
        server_time=iso_time(time.time()),
        active_workloads=active,
        workers=[describe_worker(row, dead_after) for row in workers.list_workers(db)],
    )


def describe_worker(row: Row, dead_after_intervals: int) -> dict[str, Any]:
    """Render a worker's row with its latest telemetry and whether it is alive."""
    return {
        "name": row["name"],
        "tags": json.loads(row["tags"]),
        "cpu": row["cpu_percent"],
        "memory": row["memory_percent"],
        "gpu": json.loads(row["gpu"]) if row["gpu"] else None,
        "host": {
            "cpu_percent": row["cpu_percent"],
            "memory_percent": row["memory_percent"],
        },
        "process": {
            "cpu_percent": row["process_cpu_percent"],
            "rss_mb": round(row["process_rss_bytes"] / 2**20, 1),
        },
        "running_jobs": row["running_jobs"],
        "concurrency": row["concurrency"],
        "last_seen": iso_time(row["last_seen"]),
        "alive": workers.is_alive(row, dead_after_intervals),
    }
