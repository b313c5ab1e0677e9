"""Placement as a pure function: filter the workers that can run a job, pick the least loaded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# How much each load figure weighs in a worker's score; held jobs matter most because they
# are exact and current, while CPU, memory and GPU figures are up to one interval old.
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
    capacity: int  # jobs it may hold: a slot each, and the prefetch of each slot
    held: int  # jobs it holds (running or waiting for a slot)
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    gpu_percent: float | None = None
    available: bool = True  # alive, joined and answering

    @property
    def free_places(self) -> int:
        return self.capacity - self.held


def is_suitable(worker: WorkerSnapshot, required_tags: frozenset[str]) -> bool:
    """The worker is available and has every required tag (busy or not)."""
    return worker.available and required_tags <= worker.tags


def can_run(worker: WorkerSnapshot, required_tags: frozenset[str]) -> bool:
    """Filter: the worker is suitable and can take one more job."""
    return is_suitable(worker, required_tags) and worker.free_places > 0


def load_score(worker: WorkerSnapshot) -> float:
    """Score: lower is less loaded."""
    return (
        SLOT_WEIGHT * worker.held / max(worker.capacity, 1)
        + CPU_WEIGHT * worker.cpu_percent / 100
        + MEMORY_WEIGHT * worker.memory_percent / 100
        + GPU_WEIGHT * (worker.gpu_percent or 0.0) / 100
    )


def pick_worker(
    required_tags: frozenset[str],
    workers: Iterable[WorkerSnapshot],
    avoid: frozenset[int] = frozenset(),
) -> WorkerSnapshot | None:
    """Return the least-loaded worker that can run the job now, or None to let it wait.

    `avoid` holds workers that already failed the job. While any other suitable worker
    exists, even a busy one, the job waits for it, so a retry lands elsewhere; only a job
    that no other worker could ever take goes back to an avoided one.
    """
    workers = list(workers)
    others = [w for w in workers if w.worker_id not in avoid]
    if avoid and any(is_suitable(w, required_tags) for w in others):
        workers = others
    fitting = [w for w in workers if can_run(w, required_tags)]
    if not fitting:
        return None
    return min(fitting, key=lambda w: (load_score(w), w.worker_id))
