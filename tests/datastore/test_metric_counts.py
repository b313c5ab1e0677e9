"""The datastore's event counts: a round's tally adds up, buckets hold what Prometheus's `le`
says, and the counts outlive the connection that wrote them."""

from __future__ import annotations

from pathlib import Path

import datastore
from datastore import metric_counts, transaction
from datastore.metric_counts import JOBS_TOTAL, Histogram, Tally

SECONDS = Histogram("test_seconds", (0.1, 1.0))


def test_a_tally_adds_to_the_counts_and_they_outlive_the_connection(
    location: Path | str,
) -> None:
    conn = datastore.connect(location)
    for _ in range(2):
        tally = Tally()
        tally.count(JOBS_TOTAL, 2, "done")
        tally.count(JOBS_TOTAL, 0, "failed")  # nothing happened: no row
        for value in (0.05, 0.1, 0.5, 1.0, 7.0):
            tally.observe(SECONDS, value)
        with transaction(conn):
            metric_counts.add_tally(conn, tally)
    conn.close()
    conn = datastore.connect(location)
    counts = metric_counts.read_counts(conn)
    conn.close()
    assert counts == {
        (JOBS_TOTAL, "done"): 4,
        ("test_seconds_bucket", "0.1"): 4,  # 0.05 and 0.1: a bound holds its own value
        ("test_seconds_bucket", "1.0"): 4,
        ("test_seconds_bucket", "+Inf"): 2,
        ("test_seconds_sum", ""): 2 * 8.65,
    }
