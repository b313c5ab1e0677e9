"""Statuses stored as readable text in the datastore and sent on the wire."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """Where one image's filtering job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobOutcome(str, Enum):
    """What a worker reports after it ran a job."""

    DONE = "done"
    FAILED = "failed"
    DISCARDED = "discarded"  # the API refused the result: the job was taken from this worker


class WorkloadStatus(str, Enum):
    """A workload's state, derived from its jobs."""

    SCHEDULING = "scheduling"
    RUNNING = "running"
    COMPLETED = "completed"


class UserRole(str, Enum):
    """Who a token belongs to."""

    ADMIN = "admin"
    USER = "user"
    WORKER = "worker"
