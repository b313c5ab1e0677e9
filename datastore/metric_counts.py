"""Counters and histograms of cluster events, kept in the datastore (`metric_counts`).

Jobs end in the API (done) and in the controller's scheduler (retried, failed, ...), and the
API may run on several hosts: counts kept in one process would each tell part of the story
and vanish with it. So each event adds to a row in the transaction that makes the event
happen, and the API reads the rows when Prometheus scrapes `/metrics`. A `Tally` gathers a
round's increments in memory, so a round of many events costs one UPSERT per row it moves.

A row is (name, label, value): a counter's sample name and its one label's value (`''`
without one); a histogram's buckets are rows of `<name>_bucket`, one per upper bound (not
cumulative: a value is added to its own bucket only), and its sum a row of `<name>_sum`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from datastore.connection import Connection

IMAGES_UPLOADED = "dpip_images_uploaded_total"
JOBS_TOTAL = "dpip_jobs_total"  # label: the outcome
# How an attempt ended, or what came of a worker's result: done (the API stored the result),
# failed (its last attempt failed), retried (an attempt failed and the job was queued again),
# returned (given back, or not taken, without costing an attempt), discarded (a worker's
# result for a job no longer its own, or a deleted one: dropped).
JOB_OUTCOMES = ("done", "failed", "retried", "returned", "discarded")
INFINITY = "+Inf"


@dataclass(frozen=True)
class Histogram:
    """A histogram's name and the upper bounds of its buckets (seconds), ascending."""

    name: str
    bounds: tuple[float, ...]

    @property
    def bucket_name(self) -> str:
        return f"{self.name}_bucket"

    @property
    def sum_name(self) -> str:
        return f"{self.name}_sum"

    @cached_property
    def labels(self) -> tuple[str, ...]:
        """Each bucket's label, as its row and Prometheus's `le` spell it; a value goes to
        the first bucket whose bound is at least the value."""
        return (*(repr(float(bound)) for bound in self.bounds), INFINITY)


# From a 64x64 grayscale (~1 ms) to the 300 s job time limit.
JOB_DURATION = Histogram(
    "dpip_job_duration_seconds",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
# From a job placed at once to a backlog of hours.
QUEUE_WAIT = Histogram(
    "dpip_job_queue_wait_seconds",
    (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400),
)
HISTOGRAMS = (JOB_DURATION, QUEUE_WAIT)


class Tally:
    """Increments to the counters and histograms, gathered until `add_tally` stores them."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._observed: dict[str, tuple[Histogram, list[int], list[float]]] = {}

    def count(self, name: str, amount: float = 1, label: str = "") -> None:
        if amount:
            self._counts[(name, label)] += amount

    def observe(self, histogram: Histogram, value: float) -> None:
        observed = self._observed.get(histogram.name)
        if observed is None:
            observed = self._observed[histogram.name] = (
                histogram,
                [0] * len(histogram.labels),
                [0.0],
            )
        _, buckets, total = observed
        buckets[bisect.bisect_left(histogram.bounds, value)] += 1
        total[0] += value

    def rows(self) -> list[tuple[str, str, float]]:
        rows = [(name, label, value) for (name, label), value in self._counts.items()]
        for histogram, buckets, total in self._observed.values():
            rows += [
                (histogram.bucket_name, label, count)
                for label, count in zip(histogram.labels, buckets, strict=True)
                if count
            ]
            rows.append((histogram.sum_name, "", total[0]))
        return rows


def add_tally(conn: Connection, tally: Tally) -> None:
    """Add the tally's increments (call inside the transaction of the events it counts)."""
    conn.executemany(
        "INSERT INTO metric_counts (name, label, value) VALUES (?, ?, ?)"
        " ON CONFLICT (name, label) DO UPDATE SET value = metric_counts.value + excluded.value",
        tally.rows(),
    )


def count(conn: Connection, name: str, amount: float = 1, label: str = "") -> None:
    """Add `amount` to one counter (call inside the transaction of the events it counts)."""
    tally = Tally()
    tally.count(name, amount, label)
    add_tally(conn, tally)


def read_counts(conn: Connection) -> dict[tuple[str, str], float]:
    """Every row's value, by (name, label)."""
    return {
        (name, label): value
        for name, label, value in conn.execute("SELECT name, label, value FROM metric_counts")
    }


def jobs_by_status(conn: Connection) -> dict[str, int]:
    """How many jobs have each status now, from the per-workload counts (no scan of jobs)."""
    return {
        status: total
        for status, total in conn.execute(
            "SELECT status, CAST(SUM(count) AS BIGINT) FROM job_counts GROUP BY status"
        )
    }
