"""The cluster's metrics, read from the datastore when Prometheus scrapes.

Counters and histograms of events (`datastore/metric_counts.py`: uploads, job outcomes, job
durations and queue waits) are kept by whichever process made the event happen, the API or
the controller's scheduler; gauges (jobs queued and running, workers and their latest load)
are read as they are now. Every API process, on any host, answers the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from datastore import Connection, metric_counts, workers
from datastore.metric_counts import IMAGES_UPLOADED, JOB_OUTCOMES, JOBS_TOTAL, Histogram
from protocol import JobStatus

TOTAL_SUFFIX = "_total"  # prometheus_client adds it to a counter family's name


class ClusterCollector(Collector):
    """Reads the datastore on each scrape through `connection` (the request's)."""

    def __init__(self, connection: Callable[[], Connection], dead_after_intervals: int) -> None:
        self._connection = connection
        self._dead_after_intervals = dead_after_intervals

    def collect(self) -> Iterator[Metric]:
        conn = self._connection()
        counts = metric_counts.read_counts(conn)
        yield _counter(IMAGES_UPLOADED, "Images uploaded (single and batch uploads).", counts)
        jobs = CounterMetricFamily(
            JOBS_TOTAL.removesuffix(TOTAL_SUFFIX),
            "Job attempts and results by outcome: done, failed (for good), retried (an"
            " attempt failed, queued again), returned (given back without costing an"
            " attempt), discarded (a worker's result for a job no longer its own).",
            labels=["outcome"],
        )
        for outcome in JOB_OUTCOMES:
            jobs.add_metric([outcome], counts.get((JOBS_TOTAL, outcome), 0))
        yield jobs
        yield _histogram(
            metric_counts.JOB_DURATION,
            "How long a worker took for a job that ended done, as the worker measured it.",
            counts,
        )
        yield _histogram(
            metric_counts.QUEUE_WAIT,
            "How long a job waited in the queue before it was assigned, at each assignment.",
            counts,
        )
        yield from self._gauges(conn)

    def _gauges(self, conn: Connection) -> Iterator[Metric]:
        by_status = metric_counts.jobs_by_status(conn)
        yield GaugeMetricFamily(
            "dpip_jobs_queued", "Jobs waiting for a worker.", by_status.get(JobStatus.QUEUED, 0)
        )
        yield GaugeMetricFamily(
            "dpip_jobs_running",
            "Jobs assigned to a worker (running or prefetched there).",
            by_status.get(JobStatus.RUNNING, 0),
        )
        rows = workers.list_workers(conn)
        alive = [row for row in rows if workers.is_alive(row, self._dead_after_intervals)]
        states = GaugeMetricFamily("dpip_workers", "Workers by state.", labels=["state"])
        states.add_metric(["alive"], len(alive))
        states.add_metric(["dead"], len(rows) - len(alive))
        yield states
        loads = {
            "cpu": GaugeMetricFamily(
                "dpip_worker_cpu_percent", "A live worker's host CPU use.", labels=["worker"]
            ),
            "memory": GaugeMetricFamily(
                "dpip_worker_memory_percent", "A live worker's host memory use.", labels=["worker"]
            ),
            "gpu": GaugeMetricFamily(
                "dpip_worker_gpu_percent",
                "A live worker's GPU utilization, where it reports a GPU.",
                labels=["worker"],
            ),
        }
        for row in alive:
            loads["cpu"].add_metric([row["name"]], row["cpu_percent"])
            loads["memory"].add_metric([row["name"]], row["memory_percent"])
            gpu = json.loads(row["gpu"]) if row["gpu"] else None
            if gpu and isinstance(gpu.get("utilization_percent"), int | float):
                loads["gpu"].add_metric([row["name"]], gpu["utilization_percent"])
        yield from loads.values()


def _counter(name: str, documentation: str, counts: dict[tuple[str, str], float]) -> Metric:
    return CounterMetricFamily(
        name.removesuffix(TOTAL_SUFFIX), documentation, value=counts.get((name, ""), 0)
    )


def _histogram(
    histogram: Histogram, documentation: str, counts: dict[tuple[str, str], float]
) -> Metric:
    """Prometheus's buckets are cumulative: each counts the values up to its bound."""
    buckets, total = [], 0.0
    for label in histogram.labels:
        total += counts.get((histogram.bucket_name, label), 0)
        buckets.append((label, total))
    return HistogramMetricFamily(
        histogram.name,
        documentation,
        buckets=buckets,
        sum_value=counts.get((histogram.sum_name, ""), 0),
    )
