"""Event-driven placement of jobs on workers: filter, then score, from live telemetry."""

from scheduler.fair_queue import FairQueue
from scheduler.placement import WorkerSnapshot, pick_worker
from scheduler.scheduler import Scheduler, WorkerRegistration

__all__ = ["FairQueue", "Scheduler", "WorkerRegistration", "WorkerSnapshot", "pick_worker"]
