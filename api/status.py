"""System status: time, the caller's active workloads and every worker's latest telemetry."""

from __future__ import annotations

import json
import time

from flask import Blueprint, current_app, jsonify
from flask_jwt_extended import jwt_required

from api.access import require_person
from api.db import get_db
from api.inputs import iso_time
from datastore import workers, workloads

bp = Blueprint("status", __name__)

SYSTEM_NAME = "DPIP"


@bp.get("/status")
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
        workers=[
            {
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
                "alive": workers.is_alive(row, dead_after),
            }
            for row in workers.list_workers(db)
        ],
    )
