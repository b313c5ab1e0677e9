"""Event-driven placement of jobs on workers: filter, then score, from live telemetry.

A pure core (`core.py`, over `worker_registry.py`, `fair_queue.py` and `placement.py`)
decides; a thin shell (`scheduler.py`, with `worker_link.py`) carries out its decisions.
"""

from scheduler.core import SchedulerCore
from scheduler.fair_queue import FairQueue
from scheduler.placement import WorkerSnapshot, pick_worker
from scheduler.scheduler import Scheduler, SchedulerSettings
from scheduler.worker_registry import WorkerRegistration

__all__ = [
    "FairQueue",
    "Scheduler",
    "SchedulerCore",
    "SchedulerSettings",
    "WorkerRegistration",
    "WorkerSnapshot",
    "pick_worker",
]
