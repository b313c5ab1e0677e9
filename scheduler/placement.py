"""Placement as a pure function: filter the workers that can run a job, pick the least loaded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# How much each load figure weighs in a worker's score; busy slots matter most because
# they are exact and current, while CPU, memory and GPU figures are up to one interval old.
SLOT_WEIGHT = 1.0
CPU_WEIGHT = 0.5
MEMORY_WEIGHT = 0.25
GPU_WEIGHT = 0.25


@dataclass(frozen=True)
class WorkerSnapshot:
    """What placement knows about one worker at one moment."""

    worker_id: int
    name: str
    tags: frozenset[str]
    concurrency: int
    running: int
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    gpu_percent: float | None = None
    available: bool = True  # alive, joined and answering

    @property
    def free_slots(self) -> int:
        return self.concurrency - self.running


def can_run(worker: WorkerSnapshot, required_tags: frozenset[str]) -> bool:
    """Filter: the worker is available, has every required tag and a free slot."""
    return worker.available and required_tags <= worker.tags and worker.free_slots > 0


def load_score(worker: WorkerSnapshot) -> float:
    """Score: lower is less loaded."""
    return (
        SLOT_WEIGHT * worker.running / max(worker.concurrency, 1)
        + CPU_WEIGHT * worker.cpu_percent / 100
        + MEMORY_WEIGHT * worker.memory_percent / 100
        + GPU_WEIGHT * (worker.gpu_percent or 0.0) / 100
    )


def pick_worker(
    required_tags: frozenset[str],
    workers: Iterable[WorkerSnapshot],
    avoid: frozenset[int] = frozenset(),
) -> WorkerSnapshot | None:
    """Return the least-loaded worker that can run the job, preferring those not in `avoid`.

    `avoid` holds workers that already failed the job; they are used only when no other
    worker fits, so a retry lands elsewhere whenever it can.
    """
    fitting = [w for w in workers if can_run(w, required_tags)]
    preferred = [w for w in fitting if w.worker_id not in avoid] or fitting
    if not preferred:
        return None
    return min(preferred, key=lambda w: (load_score(w), w.worker_id))
