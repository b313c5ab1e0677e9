"""The scheduler's core: events in, each with its time; decisions out. No I/O, no clock.

The shell (`scheduler.py`) feeds it what happened: jobs queued, a worker joined, reported
or sent results, a submission was refused, a tick; and what the datastore answered to a
decision (which jobs a failed attempt put back in the queue). It carries out what the core
returns. So every path of the job state machine and every fault is a plain call here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from datastore.jobs import QueuedJob
from protocol import JobOutcome, JobResults, SubmitAnswer, Telemetry
from scheduler.decisions import (
    AcceptResult,
    Assign,
    Decision,
    DeclareDead,
    Drop,
    FailAttempt,
    FailedForGood,
    HandBack,
    LoadNewJobs,
    OpenLink,
    RecordLoad,
    ReleaseJobs,
    ReloadQueue,
    Requeue,
    SetAside,
    Settle,
)
from scheduler.fair_queue import FairQueue
from scheduler.placement import WorkerSnapshot, pick_worker
from scheduler.worker_registry import WorkerRegistration, WorkerRegistry, WorkerState

LOST_JOB_ERROR = "the worker lost the job without reporting a result"
RESTARTED_ERROR = "worker restarted while running the job"
DIED_ERROR = "worker died while running the job"

# Answers after which the worker only has to wait for a free slot, or for its join to land.
WAIT_ANSWERS = frozenset({SubmitAnswer.BUSY, SubmitAnswer.NOT_READY})


class SchedulerCore:
    """The queue of waiting jobs and the view of the workers, changed only by events."""

    def __init__(self, dead_after_s: float, recovery_sweep_s: float) -> None:
        self._dead_after_s = dead_after_s
        self._recovery_sweep_s = recovery_sweep_s
        self._queue = FairQueue()
        self._workers = WorkerRegistry()
        self._last_job_id = 0  # the highest id of a job loaded as new
        self._last_sweep = 0.0

    # Jobs --------------------------------------------------------------------------

    def restore(self, running_by_worker: dict[int, set[int]], now: float) -> list[Decision]:
        """At start: remember whose jobs were running (their workers re-join), load the rest."""
        for worker_id, job_ids in running_by_worker.items():
            self._workers.restore(worker_id, job_ids, now)
        self._last_sweep = now
        return [LoadNewJobs(self._last_job_id)]

    def on_jobs_queued(self) -> list[Decision]:
        return [LoadNewJobs(self._last_job_id)]

    def add_jobs(self, jobs: Iterable[QueuedJob]) -> None:
        """Queue jobs at the back of their workloads' lines (a job queued already is ignored)."""
        for job in jobs:
            self._queue.push(job)
            self._last_job_id = max(self._last_job_id, job.job_id)

    def requeue(self, jobs: Iterable[QueuedJob]) -> None:
        """Queue jobs handed back or retried at the front of their workloads' lines, in order."""
        for job in reversed(list(jobs)):
            self._queue.push(job, front=True)

    def missing(self, queued_job_ids: Iterable[int]) -> list[int]:
        """Those of the datastore's queued jobs that the queue lacks."""
        return [job_id for job_id in queued_job_ids if job_id not in self._queue]

    def place(self, now: float) -> list[Assign]:
        """Take every queued job that a worker has room for (a free slot, or a place in the
        prefetch of its slots); each holds its place now."""
        if not self._queue:
            return []
        snapshots = self._workers.snapshots()
        if not any(s.available and s.free_places > 0 for s in snapshots.values()):
            return []

        def choose(job: QueuedJob) -> int | None:
            avoid = frozenset() if job.last_worker_id is None else frozenset([job.last_worker_id])
            chosen = pick_worker(job.tags, snapshots.values(), avoid)
            if chosen is None:
                return None
            snapshots[chosen.worker_id] = _one_more(chosen)
            return chosen.worker_id

        assignments = []
        for job, worker_id in self._queue.drain(choose):
            self._workers.get(worker_id).placed[job.job_id] = now
            assignments.append(Assign(job, worker_id))
        return assignments

    def assignment_void(self, job_id: int, worker_id: int) -> None:
        """The job was no longer queued when the shell came to assign it: free its slot."""
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.placed.pop(job_id, None)

    def attempts_recorded(
        self, requeued: Iterable[int], failed: Iterable[int], error: str
    ) -> list[Decision]:
        """The datastore's answer to failed attempts: retry the first, give up on the second."""
        decisions: list[Decision] = []
        if requeued := tuple(requeued):
            decisions.append(Requeue(requeued))
        if failed := tuple(failed):
            decisions.append(FailedForGood(failed, error))
        return decisions

    # Workers -----------------------------------------------------------------------

    def on_join(self, registration: WorkerRegistration, now: float) -> list[Decision]:
        """A worker joined (again): a fresh view of it, and its other jobs taken back."""
        self._workers.join(registration, now)
        return [
            OpenLink(registration),
            ReleaseJobs(registration.worker_id, registration.kept_job_ids, RESTARTED_ERROR),
        ]

    def on_telemetry(self, report: Telemetry, now: float) -> list[Decision]:
        """A worker's report: it lives, its load, and which jobs it holds (others it lost),
        running or prefetched."""
        worker = self._sender(report.worker_id, report.worker_key, "report")
        if isinstance(worker, Drop):
            return [worker]
        worker.last_seen = now
        worker.cpu_percent = report.cpu_percent
        worker.memory_percent = report.memory_percent
        worker.gpu_percent = report.gpu_percent
        worker.unresponsive = worker.full = False
        reported = frozenset(report.running_job_ids).union(report.prefetched_job_ids)
        worker.reported = reported - worker.finished_lately
        worker.finished_lately &= reported  # forget a job once reports stop listing it
        decisions: list[Decision] = [RecordLoad(report, now)]
        # A job gets a grace period after it was placed, so a report sampled before the job
        # arrived does not count; one that did end is done already, and stays so.
        lost = [
            job_id
            for job_id, placed_at in worker.placed.items()
            if job_id not in reported and now - placed_at > self._dead_after_s
        ]
        for job_id in lost:
            del worker.placed[job_id]
            decisions.append(FailAttempt(job_id, report.worker_id, LOST_JOB_ERROR))
        return decisions

    def on_results(self, results: JobResults) -> list[Decision]:
        """Jobs ended on a worker: each frees its place; a failure costs its job an attempt,
        a job given back unstarted goes back to the queue at no cost."""
        worker = self._sender(results.worker_id, results.worker_key, "result")
        if isinstance(worker, Drop):
            return [worker]
        decisions: list[Decision] = []
        settled, returned = [], []
        for result in results.results:
            placed_here = worker.job_ended(result.job_id)
            if result.outcome == JobOutcome.DONE.value:
                worker.job_took(result.duration_ms)  # how many the worker gets to wait
            decisions.append(AcceptResult(result, results.worker_id, late=not placed_here))
            if result.outcome in (JobOutcome.DONE.value, JobOutcome.DISCARDED.value):
                settled.append(result.job_id)  # the API stored it done already, or not here
            elif not placed_here:
                continue  # taken from it already: settled then
            elif result.outcome == JobOutcome.RETURNED.value:
                returned.append(result.job_id)
                decisions.append(HandBack(result.job_id, results.worker_id, result.error))
            else:
                decisions.append(FailAttempt(result.job_id, results.worker_id, result.error))
        if returned:
            decisions.append(Requeue(tuple(returned)))
        if settled:
            decisions.append(Settle(tuple(settled)))
        return decisions

    def on_refused(
        self,
        registration: WorkerRegistration,
        job_ids: tuple[int, ...],
        answer: SubmitAnswer | None,
        reason: str,
    ) -> list[Decision]:
        """The worker did not take these jobs (`answer` None: no answer came). They go back
        without costing an attempt. A busy or not-ready worker only waits for its next report
        or result; one that failed the call is set aside until its next report. A refusal
        through the link of an earlier join changes nothing: that join's jobs were settled.
        """
        worker = self._workers.get(registration.worker_id)
        if worker is None or worker.registration != registration:
            return []
        # Those no longer placed there were settled already (lost, say).
        handed_back = tuple(j for j in job_ids if worker.placed.pop(j, None) is not None)
        decisions: list[Decision] = [
            HandBack(job_id, registration.worker_id, reason) for job_id in handed_back
        ]
        if handed_back:
            decisions.append(Requeue(handed_back))
        if answer in WAIT_ANSWERS:
            worker.full = True
        else:
            worker.unresponsive = True
            decisions.append(SetAside(registration.worker_id, reason))
        return decisions

    def on_tick(self, now: float) -> list[Decision]:
        """Recovery only: declare silent workers dead; now and then, re-read the queue."""
        decisions: list[Decision] = []
        for worker_id in self._workers.silent(now, self._dead_after_s):
            self._workers.remove(worker_id)
            decisions.append(DeclareDead(worker_id))
            decisions.append(ReleaseJobs(worker_id, frozenset(), DIED_ERROR))
        if now - self._last_sweep >= self._recovery_sweep_s:
            self._last_sweep = now
            decisions.append(ReloadQueue(self._last_job_id))
        return decisions

    def joined_worker_ids(self) -> frozenset[int]:
        """The workers the scheduler counts on: joined here and not declared dead."""
        return self._workers.joined_ids()

    def _sender(self, worker_id: int, worker_key: str, what: str) -> WorkerState | Drop:
        """The worker a message claims to come from, if it is joined and the key is its own."""
        worker = self._workers.get(worker_id)
        if worker is None or worker.registration is None:
            # Not joined with this controller (yet), or declared dead: it will re-join.
            return Drop(worker_id, what, "not joined here", suspicious=False)
        if not worker.proven_by(worker_key):
            return Drop(worker_id, what, "without its key", suspicious=True)
        return worker


def _one_more(worker: WorkerSnapshot) -> WorkerSnapshot:
    return dataclasses.replace(worker, held=worker.held + 1)
