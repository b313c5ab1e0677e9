"""The overview (`/`): every worker with its telemetry and a sparkline, and the caller's
workloads (everyone's for an admin), refreshed by an htmx poll of one fragment."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, render_template, request
from flask.blueprints import BlueprintSetupState

from api.dashboard.blueprint import bp
from api.dashboard.described import html_page
from api.dashboard.history import HistoryRing, sparkline_points
from api.dashboard.session import page
from api.db import get_db
from api.status import describe_worker
from api.tokens import Principal
from api.workloads import describe_workload
from datastore import worker_history, workers, workloads
from foundation import defaults
from imaging import FILTERS
from protocol import WorkloadStatus

RATES_EXTENSION = "dpip_dashboard_workload_rates"
SPARK_WIDTH, SPARK_HEIGHT = 120, 24
STATUSES = [status.value for status in WorkloadStatus]


@bp.record_once
def _install_rates(state: BlueprintSetupState) -> None:
    config = state.app.config["DPIP"]
    state.app.extensions[RATES_EXTENSION] = HistoryRing(
        config.dashboard_history_series,
        config.dashboard_history_samples,
        config.dashboard_history_s,
    )


def workload_rates() -> HistoryRing:
    """Each workload's finished count at each poll, for its images/s."""
    return current_app.extensions[RATES_EXTENSION]


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
    """Each worker as /status renders it, with jobs done and its CPU, memory and GPU
    sparklines (from the datastore's history, the same in every API process)."""
    db = get_db()
    config = current_app.config["DPIP"]
    history = worker_history.samples_since(db, time.time() - config.dashboard_history_s)
    shown = []
    for row in workers.list_workers(db):
        worker = describe_worker(row, config.dead_after_intervals)
        samples = history.get(row["id"], [])
        worker["jobs_done"] = row["jobs_done"]
        worker["cpu_line"] = _line([s.cpu_percent for s in samples])
        worker["memory_line"] = _line([s.memory_percent for s in samples])
        worker["gpu_line"] = _line([s.gpu_percent for s in samples if s.gpu_percent is not None])
        shown.append(worker)
    return shown


def _line(values: list[float]) -> str:
    return sparkline_points(values, SPARK_WIDTH, SPARK_HEIGHT)


def _workloads(principal: Principal, wanted: WorkloadFilter) -> list[dict[str, Any]]:
    """The caller's workloads, newest first, as GET /workloads renders them, with images/s."""
    rows = workloads.list_workloads(get_db(), None if principal.is_admin else principal.id)
    rates, now = workload_rates(), time.time()
    shown = []
    for row in reversed(rows):
        workload = describe_workload(row, with_lists=False)
        if not wanted.keeps(workload):
            continue
        images = workload["images"]
        key = ("workload", row["id"])
        rates.record(key, now, images["done"] + images["failed"])
        workload["rate"] = rates.rate(key, defaults.DASHBOARD_RATE_WINDOW_S)
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
