"""GET /metrics: the Prometheus text format, for the scrape token or an admin's token.

Prometheus sends the scrape token (`DPIP_METRICS_TOKEN`, or the one made at first start in
the data dir) as a bearer token; it is compared in constant time. Any other bearer must be
an admin's token: no token or a bad one answers 401, a user's or a worker's 403.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, current_app, request
from flask_jwt_extended import verify_jwt_in_request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from api import http_metrics
from api.access import require_admin
from api.cluster_metrics import ClusterCollector
from api.db import get_db
from api.openapi import USER_TOKEN, Answer, describe

bp = Blueprint("metrics", __name__)

REGISTRY_EXTENSION = "dpip_metrics_registry"
SCRAPE_TOKEN: tuple[dict, ...] = ({"scrapeToken": []},)
BEARER_PREFIX = "Bearer "


def install_registry(app: Flask) -> None:
    """Gather what /metrics reports: the cluster's figures and the API's requests."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(get_db, app.config["DPIP"].dead_after_intervals))
    http_metrics.register_collectors(registry)
    app.extensions[REGISTRY_EXTENSION] = registry


def _is_scrape_token() -> bool:
    expected = current_app.config["DPIP"].metrics_token
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith(BEARER_PREFIX):
        return False
    given = header.removeprefix(BEARER_PREFIX).strip()
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


@bp.get("/metrics")
@describe(
    "Metrics for Prometheus",
    "status",
    description="The cluster's counters, histograms and gauges (uploads, job outcomes, job"
    " durations and queue waits, queued and running jobs, workers and their load) and the"
    " API's requests, in the Prometheus text format 0.0.4. For the scrape token"
    ' (`DPIP_METRICS_TOKEN`) or an admin\'s token. See user-guide.md, "Metrics".',
    security=SCRAPE_TOKEN + USER_TOKEN,
    answers={
        200: Answer(
            "The metrics", {"text/plain": {"type": "string", "contentMediaType": "text/plain"}}
        )
    },
    errors={403: "`forbidden`: a token that is neither the scrape token nor an admin's."},
)
def metrics() -> Response:
    if not _is_scrape_token():
        verify_jwt_in_request()
        require_admin()
    body = generate_latest(current_app.extensions[REGISTRY_EXTENSION])
    return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
