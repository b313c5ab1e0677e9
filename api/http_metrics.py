"""Count the API's requests for /metrics: by method, route and status, and their durations.

The API runs as several gunicorn processes; prometheus_client's multiprocess mode has each
write its counts to files of its own in `PROMETHEUS_MULTIPROC_DIR`, which a scrape (in any
process) adds up. That mode is chosen when prometheus_client is first imported, so `dpip
api` sets the directory before it imports the API (`prepare_http_metrics_dir`); without
it (an app made in a test) the counts are this process's own.

Labels are bounded: `route` is the Flask rule that matched (`/workloads/<id:workload_id>`),
never the path, and `unmatched` for any path no rule matched; an unusual method is `other`.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STARTED_AT = "dpip.request_started_at"  # the WSGI environ's key: when the request came in

REQUESTS = Counter(
    "dpip_http_requests",
    "HTTP requests the API answered, by method, route (the URL rule) and status.",
    ("method", "route", "status"),
    registry=None,
)
REQUEST_DURATION = Histogram(
    "dpip_http_request_duration_seconds",
    "Time from a request's arrival to its answer being ready to send (a streamed body's"
    " sending not included), by route.",
    ("route",),
    registry=None,
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE)


def forget_process(pid: int) -> None:
    """A gunicorn process exited: drop its live values (its counts stay, summed)."""
    if multiprocess_dir():
        mark_process_dead(pid)


def register_collectors(registry: CollectorRegistry) -> None:
    """Have `registry` report the request counts: every process's, or this one's."""
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(REQUEST_DURATION)


class _StampArrival:
    """WSGI middleware: note when each request came in, before any Flask hook runs."""

    def __init__(self, wsgi_app) -> None:
        self._wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED_AT] = time.perf_counter()
        return self._wsgi_app(environ, start_response)


def _count(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED_ROUTE
    method = request.method if request.method in METHODS else OTHER_METHOD
    REQUESTS.labels(method, route, str(response.status_code)).inc()
    started_at = request.environ.get(STARTED_AT)
    if started_at is not None:
        REQUEST_DURATION.labels(route).observe(time.perf_counter() - started_at)
    return response


def init_app(app: Flask) -> None:
    """Count every request `app` answers, errors included."""
    app.wsgi_app = _StampArrival(app.wsgi_app)
    app.after_request(_count)
