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
    # Given back unstarted or unfinished through no fault of its own: it waited too long
    # for a slot, or a batch-mate's failure ended its batch. The attempt does not count.
    RETURNED = "returned"


class SubmitAnswer(str, Enum):
    """A worker's answer to `submit_job`, so the scheduler can tell a wait from a fault."""

    ACCEPTED = "accepted"
    BUSY = "busy"  # every slot is taken: one frees when a running job ends
    NOT_READY = "not_ready"  # not joined yet, or stopping
    REFUSED = "refused"  # a wrong key, a malformed job, or a job already running here


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
