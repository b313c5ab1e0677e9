"""What the scheduler's core decides; the shell carries each one out.

Every decision is a frozen dataclass. Those that need the datastore's answer (whether a
failed attempt was the last one, say) are carried out by the shell, which hands the answer
back to the core and carries out what the core decides next.
"""

from __future__ import annotations

from dataclasses import dataclass

from datastore.jobs import QueuedJob
from protocol import JobResult, Telemetry
from scheduler.worker_registry import WorkerRegistration


@dataclass(frozen=True)
class Assign:
    """queued → running: set the job running on the worker and send it there."""

    job: QueuedJob
    worker_id: int


@dataclass(frozen=True)
class HandBack:
    """running → queued, the attempt not counted: the worker did not take the job, or gave
    it back unstarted."""

    job_id: int
    worker_id: int
    reason: str


@dataclass(frozen=True)
class FailAttempt:
    """running → queued, or failed at the attempt limit (the datastore counts attempts)."""

    job_id: int
    worker_id: int
    error: str


@dataclass(frozen=True)
class ReleaseJobs:
    """Fail an attempt of every job running on the worker but `keep`, with `error`."""

    worker_id: int
    keep: frozenset[int]
    error: str


@dataclass(frozen=True)
class Requeue:
    """These jobs are queued again: load them to the front of their workloads' lines."""

    job_ids: tuple[int, ...]


@dataclass(frozen=True)
class Settle:
    """These jobs ended (done, or the worker's result says so): wake who waits on them."""

    job_ids: tuple[int, ...]


@dataclass(frozen=True)
class FailedForGood:
    """These jobs used up their attempts and are failed, with `error`."""

    job_ids: tuple[int, ...]
    error: str


@dataclass(frozen=True)
class LoadNewJobs:
    """Load the queued jobs with an id above `after_job_id`."""

    after_job_id: int


@dataclass(frozen=True)
class ReloadQueue:
    """The recovery sweep: load the new jobs and any queued job the queue lacks (a lost hint)."""

    after_job_id: int


@dataclass(frozen=True)
class OpenLink:
    """A worker joined: close any link of its earlier join and open one with its new key."""

    registration: WorkerRegistration


@dataclass(frozen=True)
class DeclareDead:
    """The worker fell silent: close its link and mark it dead."""

    worker_id: int


@dataclass(frozen=True)
class SetAside:
    """A submission to the worker failed: it gets no job until its next report."""

    worker_id: int
    reason: str


@dataclass(frozen=True)
class RecordLoad:
    """Store a genuine report's figures, as of when it was received."""

    report: Telemetry
    received_at: float


@dataclass(frozen=True)
class AcceptResult:
    """A genuine result; `late` when its job had already been taken from the worker."""

    result: JobResult
    worker_id: int
    late: bool


@dataclass(frozen=True)
class Drop:
    """A message the scheduler does not believe: its sender is not joined, or not proven."""

    worker_id: int
    what: str  # "result" or "report"
    reason: str
    suspicious: bool  # it named a joined worker without that worker's key


Decision = (
    Assign
    | HandBack
    | FailAttempt
    | ReleaseJobs
    | Requeue
    | Settle
    | FailedForGood
    | LoadNewJobs
    | ReloadQueue
    | OpenLink
    | DeclareDead
    | SetAside
    | RecordLoad
    | AcceptResult
    | Drop
)
