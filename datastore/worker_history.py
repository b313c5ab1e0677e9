"""Each worker's telemetry of the last minutes, one sample per step: the dashboard's
sparklines.

The workers table keeps only the latest figures. Keeping the history here, not in each API
process's memory, lets every API process draw the same lines and a restart keep them. A
worker reports every second or so; only its first report in each step is kept (one
insert that is ignored for the others), and reaching a new step prunes what fell out of
the span, so a worker has at most `kept_s / step_s` samples whatever its report rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from datastore.connection import Connection
from foundation import defaults


@dataclass(frozen=True)
class WorkerSample:
    """One worker's figures at one moment (seconds since the epoch)."""

    at: float
    cpu_percent: float
    memory_percent: float
    gpu_percent: float | None


def record_sample(
    conn: Connection,
    worker_id: int,
    sample: WorkerSample,
    step_s: float = defaults.WORKER_HISTORY_STEP_S,
    kept_s: float = defaults.WORKER_HISTORY_KEPT_S,
) -> None:
    step = int(sample.at // step_s)
    inserted = conn.execute(
        "INSERT INTO worker_samples"
        " (worker_id, step, at, cpu_percent, memory_percent, gpu_percent)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            worker_id,
            step,
            sample.at,
            sample.cpu_percent,
            sample.memory_percent,
            sample.gpu_percent,
        ),
    ).rowcount
    if inserted:
        conn.execute(
            "DELETE FROM worker_samples WHERE worker_id = ? AND step <= ?",
            (worker_id, step - int(kept_s // step_s)),
        )


def samples_since(conn: Connection, since: float) -> dict[int, list[WorkerSample]]:
    """Every worker's samples taken at `since` or later, oldest first, by worker id."""
    rows = conn.execute(
        "SELECT worker_id, at, cpu_percent, memory_percent, gpu_percent FROM worker_samples"
        " WHERE at >= ? ORDER BY worker_id, step",
        (since,),
    )
    history: dict[int, list[WorkerSample]] = defaultdict(list)
    for worker_id, *figures in rows:
        history[worker_id].append(WorkerSample(*figures))
    return dict(history)
