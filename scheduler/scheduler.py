"""The scheduler's shell: one thread that feeds events to the core and carries out its decisions.

Events (jobs queued, a worker's results, a worker joined or reported, a refused submission,
a sweep tick) arrive on a queue from the controller's socket threads and the link threads.
A round takes every waiting event: the thread hands each to the core (`core.py`) with its
time, carries out what the core decides, then places as many queued jobs as workers have
room for, all in one datastore transaction; only once it is committed do the jobs go to
the workers' links (one batch per worker) and the news of ended jobs to the API. Nothing
polls: the thread sleeps on the event queue.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import datastore
from datastore import jobs, metric_counts, transaction, worker_history, workers
from datastore.metric_counts import JOB_DURATION, JOBS_TOTAL, QUEUE_WAIT, Tally
from foundation import defaults
from protocol import JobAssignment, JobOutcome, JobResults, JobStatus, Telemetry
from scheduler.core import SchedulerCore
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
from scheduler.worker_link import LinkOpener, WorkerLinks, rpc_link_opener
from scheduler.worker_registry import WorkerRegistration

log = logging.getLogger(__name__)

LOAD_BATCH = 500  # job ids per query, well under SQLite's limit on bound parameters


@dataclass(frozen=True)
class SchedulerSettings:
    """Timing and retry limits of the scheduler."""

    dead_after_s: float
    recovery_sweep_s: float
    max_attempts: int
    rpc_timeout_s: float = defaults.RPC_TIMEOUT_MS / 1000


class Scheduler:
    """Owns the core, the datastore connection and the links; all methods but `run` are
    thread-safe posts."""

    def __init__(
        self,
        database: Path | str,
        settings: SchedulerSettings,
        on_progress: Callable[[set[int]], None] = lambda workload_ids: None,
        open_link: LinkOpener | None = None,
    ) -> None:
        """`on_progress` hears, once per round of events, which workloads had jobs end;
        `open_link` makes a worker's link (tests pass a stub)."""
        self._database = database
        self._settings = settings
        self._on_progress = on_progress
        self._core = SchedulerCore(settings.dead_after_s, settings.recovery_sweep_s)
        self._events: queue.SimpleQueue[Callable[[], list[Decision]] | None] = queue.SimpleQueue()
        self._links = WorkerLinks(open_link or rpc_link_opener(settings.rpc_timeout_s))
        self._settled_job_ids: list[int] = []  # ended (done or failed) in this round of events
        self._assigned: dict[int, list[JobAssignment]] = {}  # this round's, by worker
        self._tally = Tally()  # this round's events, for /metrics
        self._db = None
        self._carry_out_by_type: dict[type, Callable[..., Iterable[Decision]]] = {
            AcceptResult: self._accept_result,
            DeclareDead: self._declare_dead,
            Drop: self._log_drop,
            FailAttempt: self._fail_attempt,
            FailedForGood: self._fail_for_good,
            HandBack: self._hand_back,
            LoadNewJobs: self._load_new_jobs,
            OpenLink: self._replace_link,
            RecordLoad: self._record_load,
            ReleaseJobs: self._release_jobs,
            ReloadQueue: self._reload_queue,
            Requeue: self._requeue,
            SetAside: self._log_set_aside,
            Settle: self._settle,
        }
        self.known_worker_ids: frozenset[int] = frozenset()  # replaced whole, read by any thread

    # Posting events (any thread) ---------------------------------------------------

    def jobs_queued(self) -> None:
        self._events.put(self._core.on_jobs_queued)

    def jobs_finished(self, results: JobResults) -> None:
        self._events.put(lambda: self._core.on_results(results))

    def worker_joined(self, registration: WorkerRegistration) -> None:
        self._events.put(lambda: self._core.on_join(registration, time.time()))

    def telemetry(self, report: Telemetry) -> None:
        received_at = time.time()
        self._events.put(lambda: self._core.on_telemetry(report, received_at))

    def tick(self) -> None:
        posted_at = time.time()  # judge silence as of now, not when a busy thread gets to it
        self._events.put(lambda: self._core.on_tick(posted_at))

    def stop(self) -> None:
        self._events.put(None)

    # The scheduler thread ----------------------------------------------------------

    def run(self) -> None:
        """Apply events and place jobs until `stop` is called."""
        self._db = datastore.connect(self._database)
        try:
            running = jobs.running_jobs_by_worker(self._db)
            self._round([lambda: self._core.restore(running, time.time())])
            while True:
                events = [self._events.get()]
                while events[-1] is not None:
                    try:
                        events.append(self._events.get_nowait())
                    except queue.Empty:
                        break
                if events[-1] is None:
                    self._round(events[:-1], place=False)
                    return
                self._round(events)
        finally:
            self._links.close_all()
            self._db.close()

    def _round(self, events: list[Callable[[], list[Decision]]], place: bool = True) -> None:
        """Carry out the events and place jobs in one transaction; then send and announce."""
        self._tally = Tally()
        with transaction(self._db):
            for event in events:
                self._carry_out(event())
            if place:
                self._place()
            self._count_round()
        # Committed: a worker that asks the API for a job's original now finds it running.
        for worker_id, assignments in self._assigned.items():
            self._links.send(worker_id, assignments)
        self._assigned.clear()
        self._announce_progress()
        self.known_worker_ids = self._core.joined_worker_ids()

    def _carry_out(self, decisions: Iterable[Decision]) -> None:
        """Carry out each decision, and those the core makes on the datastore's answers."""
        pending = deque(decisions)
        while pending:
            decision = pending.popleft()
            pending.extend(self._carry_out_by_type[type(decision)](decision))

    def _count_round(self) -> None:
        """Add the round's events to the datastore's counts: one UPSERT per row they move."""
        assigned = [job.job_id for batch in self._assigned.values() for job in batch]
        if assigned:
            for waited in jobs.queue_waits(self._db, assigned):
                self._tally.observe(QUEUE_WAIT, waited)
        metric_counts.add_tally(self._db, self._tally)

    def _announce_progress(self) -> None:
        if self._settled_job_ids:
            self._on_progress(jobs.workloads_of(self._db, self._settled_job_ids))
            self._settled_job_ids.clear()

    def _place(self) -> None:
        """Assign what the core placed; place again if a job had gone meanwhile."""
        while assignments := self._core.place(time.time()):
            assigned = [self._assign(assignment) for assignment in assignments]
            if all(assigned):
                return

    def _assign(self, assignment: Assign) -> bool:
        """Set the job running and put it in its worker's batch; False if no longer queued."""
        job, worker_id = assignment.job, assignment.worker_id
        if jobs.assign_job(self._db, job.job_id, worker_id) is None:
            self._core.assignment_void(job.job_id, worker_id)  # finished or deleted meanwhile
            return False
        self._assigned.setdefault(worker_id, []).append(
            JobAssignment(
                job_id=job.job_id,
                workload_id=job.workload_id,
                image_number=job.image_number,
                filter_name=job.filter_name,
                params=job.params,
            )
        )
        return True

    # Carrying out decisions ----------------------------------------------------------

    def _load_new_jobs(self, decision: LoadNewJobs) -> list[Decision]:
        self._core.add_jobs(jobs.load_queued_jobs(self._db, decision.after_job_id))
        return []

    def _reload_queue(self, decision: ReloadQueue) -> list[Decision]:
        self._core.add_jobs(jobs.load_queued_jobs(self._db, decision.after_job_id))
        # Only queued jobs the queue lacks are loaded: a full reload of a long queue
        # would stall the scheduler thread at every sweep.
        lost = self._core.missing(jobs.queued_job_ids(self._db))
        for start in range(0, len(lost), LOAD_BATCH):
            batch = lost[start : start + LOAD_BATCH]
            self._core.add_jobs(jobs.load_queued_jobs(self._db, job_ids=batch))
        return []

    def _requeue(self, decision: Requeue) -> list[Decision]:
        self._core.requeue(jobs.load_queued_jobs(self._db, job_ids=list(decision.job_ids)))
        return []

    def _hand_back(self, decision: HandBack) -> list[Decision]:
        log.info(
            "job %s back in the queue from worker %s: %s",
            decision.job_id,
            decision.worker_id,
            decision.reason,
        )
        if jobs.unassign_job(self._db, decision.job_id, decision.worker_id):
            self._tally.count(JOBS_TOTAL, 1, "returned")
        return []

    def _fail_attempt(self, decision: FailAttempt) -> list[Decision]:
        status = jobs.fail_attempt(
            self._db,
            decision.job_id,
            decision.worker_id,
            decision.error,
            self._settings.max_attempts,
        )
        requeued = [decision.job_id] if status is JobStatus.QUEUED else []
        failed = [decision.job_id] if status is JobStatus.FAILED else []
        return self._attempts_recorded(requeued, failed, decision.error)

    def _release_jobs(self, decision: ReleaseJobs) -> list[Decision]:
        worker_id = decision.worker_id
        requeued, failed = jobs.release_worker_jobs(
            self._db, worker_id, decision.keep, decision.error, self._settings.max_attempts
        )
        if requeued:
            log.info(
                "worker %s: %d job(s) back in the queue (%s)",
                worker_id,
                len(requeued),
                decision.error,
            )
        return self._attempts_recorded(requeued, failed, decision.error)

    def _attempts_recorded(
        self, requeued: list[int], failed: list[int], error: str
    ) -> list[Decision]:
        self._tally.count(JOBS_TOTAL, len(requeued), "retried")
        self._tally.count(JOBS_TOTAL, len(failed), "failed")
        return self._core.attempts_recorded(requeued, failed, error)

    def _settle(self, decision: Settle) -> list[Decision]:
        self._settled_job_ids += decision.job_ids
        return []

    def _fail_for_good(self, decision: FailedForGood) -> list[Decision]:
        for job_id in decision.job_ids:
            log.warning("job %s failed for good: %s", job_id, decision.error)
        self._settled_job_ids += decision.job_ids
        return []

    def _record_load(self, decision: RecordLoad) -> list[Decision]:
        report = decision.report
        load = workers.Load(
            cpu_percent=report.cpu_percent,
            memory_percent=report.memory_percent,
            gpu=report.gpu,
            process_cpu_percent=report.process_cpu_percent,
            process_rss_bytes=report.process_rss_bytes,
            running_jobs=len(report.running_job_ids),
        )
        workers.record_telemetry(self._db, report.worker_id, load, decision.received_at)
        sample = worker_history.WorkerSample(
            decision.received_at, report.cpu_percent, report.memory_percent, report.gpu_percent
        )
        worker_history.record_sample(self._db, report.worker_id, sample)
        return []

    def _replace_link(self, decision: OpenLink) -> list[Decision]:
        reg = decision.registration
        self._links.open(
            reg,
            lambda refused, answer, reason: self._events.put(
                lambda: self._core.on_refused(
                    reg, tuple(job.job_id for job in refused), answer, reason
                )
            ),
        )
        log.info(
            "worker %s (%s) joined with %d slot(s), prefetching %d job(s) per slot",
            reg.worker_id,
            reg.name,
            reg.concurrency,
            reg.prefetch,
        )
        return []

    def _declare_dead(self, decision: DeclareDead) -> list[Decision]:
        log.warning("worker %s is silent: declared dead", decision.worker_id)
        self._links.close(decision.worker_id)
        workers.mark_dead(self._db, decision.worker_id)
        return []

    def _log_set_aside(self, decision: SetAside) -> list[Decision]:
        log.warning(
            "worker %s gets no job until its next report: %s", decision.worker_id, decision.reason
        )
        return []

    def _accept_result(self, decision: AcceptResult) -> list[Decision]:
        """Count the result (a done job's duration, a discarded one) and log it."""
        result = decision.result
        if result.outcome == JobOutcome.DONE.value:
            self._tally.observe(JOB_DURATION, result.duration_ms / 1000)
        elif result.outcome == JobOutcome.DISCARDED.value:
            self._tally.count(JOBS_TOTAL, 1, "discarded")
        # A line per job at INFO cost the scheduler thread a fifth of its time: a job that
        # ended well is logged at DEBUG, a failure (rare, and worth a look) at INFO.
        failed = result.outcome == JobOutcome.FAILED.value
        log.log(
            logging.INFO if failed else logging.DEBUG,
            "job %s %s on worker %s in %d ms%s%s",
            result.job_id,
            result.outcome,
            decision.worker_id,
            result.duration_ms,
            " (taken from it already)" if decision.late else "",
            f": {result.error}" if failed else "",
        )
        return []

    def _log_drop(self, decision: Drop) -> list[Decision]:
        level = logging.WARNING if decision.suspicious else logging.DEBUG
        log.log(
            level,
            "dropped a %s for worker %s: %s",
            decision.what,
            decision.worker_id,
            decision.reason,
        )
        return []
