"""The overview (`/`): every worker with its telemetry and a sparkline, and the caller's
workloads (everyone's for an admin), refreshed by an htmx poll of one fragment."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, render_template, request
from flask.blueprints import BlueprintSetupState

from api.dashboard.blueprint import bp
from api.dashboard.described import html_page
from api.dashboard.history import HistoryRing, sparkline_points
from api.dashboard.session import page
from api.db import get_db
from api.status import describe_worker
from api.tokens import Principal
from api.workloads import describe_workload
from datastore import jobs, workers, workloads
from foundation import defaults
from imaging import FILTERS
from protocol import WorkloadStatus

HISTORY_EXTENSION = "dpip_dashboard_history"
SPARK_WIDTH, SPARK_HEIGHT = 120, 24
STATUSES = [status.value for status in WorkloadStatus]


@bp.record_once
def _install_history(state: BlueprintSetupState) -> None:
    config = state.app.config["DPIP"]
    state.app.extensions[HISTORY_EXTENSION] = HistoryRing(
        config.dashboard_history_series,
        config.dashboard_history_samples,
        config.dashboard_history_s,
    )


def history(app: Flask | None = None) -> HistoryRing:
    return (app or current_app).extensions[HISTORY_EXTENSION]


@dataclass(frozen=True)
class WorkloadFilter:
    """The overview's filter, kept in the URL (`?q=name&status=running`)."""

    text: str
    status: str

    @classmethod
    def from_args(cls) -> WorkloadFilter:
        status = request.args.get("status", "")
        return cls(request.args.get("q", "").strip(), status if status in STATUSES else "")

    def keeps(self, workload: dict[str, Any]) -> bool:
        return (not self.status or workload["status"] == self.status) and (
            self.text.casefold() in workload["workload_name"].casefold()
        )


def _workers() -> list[dict[str, Any]]:
    """Each worker as /status renders it, with jobs done and its CPU/memory sparklines."""
    db = get_db()
    dead_after = current_app.config["DPIP"].dead_after_intervals
    done = jobs.done_jobs_by_worker(db)
    ring = history()
    shown = []
    for row in workers.list_workers(db):
        worker = describe_worker(row, dead_after)
        gpu = (worker["gpu"] or {}).get("utilization_percent", 0.0)
        ring.record(("worker", row["id"]), row["last_seen"], worker["cpu"], worker["memory"], gpu)
        samples = ring.samples(("worker", row["id"]))
        worker["jobs_done"] = done.get(row["id"], 0)
        worker["cpu_line"] = sparkline_points(
            [s.values[0] for s in samples], SPARK_WIDTH, SPARK_HEIGHT
        )
        worker["memory_line"] = sparkline_points(
            [s.values[1] for s in samples], SPARK_WIDTH, SPARK_HEIGHT
        )
        shown.append(worker)
    return shown


def _workloads(principal: Principal, wanted: WorkloadFilter) -> list[dict[str, Any]]:
    """The caller's workloads, newest first, as GET /workloads renders them, with images/s."""
    rows = workloads.list_workloads(get_db(), None if principal.is_admin else principal.id)
    ring, now = history(), time.time()
    shown = []
    for row in reversed(rows):
        workload = describe_workload(row, with_lists=False)
        if not wanted.keeps(workload):
            continue
        images = workload["images"]
        key = ("workload", row["id"])
        ring.record(key, now, images["done"] + images["failed"])
        workload["rate"] = ring.rate(key, defaults.DASHBOARD_RATE_WINDOW_S)
        shown.append(workload)
    return shown


def _context(principal: Principal) -> dict[str, Any]:
    wanted = WorkloadFilter.from_args()
    return {
        "principal": principal,
        "wanted": wanted,
        "statuses": STATUSES,
        "filters": sorted(FILTERS),
        "default_filter": defaults.DEFAULT_FILTER,
        "workers": _workers(),
        "workloads": _workloads(principal, wanted),
        "poll_s": current_app.config["DPIP"].dashboard_poll_s,
        "spark": (SPARK_WIDTH, SPARK_HEIGHT),
    }


@bp.get("/")
@html_page("The dashboard's overview: workers and workloads, live")
@page
def overview(principal: Principal):
    return render_template("overview.html", **_context(principal))


@bp.get("/ui/overview")
@html_page("The overview's live part (an HTML fragment, polled)")
@page
def overview_fragment(principal: Principal):
    return render_template("_overview.html", **_context(principal))
