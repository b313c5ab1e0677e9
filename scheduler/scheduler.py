"""The scheduler: one thread that owns all placement state and reacts to events.

Events (jobs queued, a job's result, a worker joined or reported telemetry, a sweep tick)
arrive on a queue from the controller's socket threads. The thread applies every waiting
event, then places as many queued jobs as there are free slots. Nothing polls: the thread
sleeps on the event queue. The periodic tick is for recovery only: dead workers, and jobs
whose hint was lost.
"""

from __future__ import annotations

import hmac
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datastore
from datastore import jobs, transaction, workers
from datastore.jobs import QueuedJob
from foundation import defaults
from protocol import JobAssignment, JobOutcome, JobResult, JobStatus, Telemetry
from scheduler.fair_queue import FairQueue
from scheduler.placement import WorkerSnapshot, pick_worker
from scheduler.worker_link import WorkerLink

log = logging.getLogger(__name__)

LOST_JOB_ERROR = "the worker lost the job without reporting a result"
LOAD_BATCH = 500  # job ids per query, well under SQLite's limit on bound parameters


@dataclass
class WorkerRegistration:
    """A worker that just joined: its identity, capacity and RPC endpoint."""

    worker_id: int
    name: str
    tags: frozenset[str]
    concurrency: int
    rpc_host: str
    rpc_port: int
    rpc_key: str
    running_job_ids: frozenset[int] = frozenset()


@dataclass
class _Worker:
    """The scheduler's live view of one worker."""

    registration: WorkerRegistration | None  # None: known from the datastore, not yet re-joined
    last_seen: float
    running: dict[int, float] = field(default_factory=dict)  # job id → when it was assigned
    reported_running: frozenset[int] = frozenset()  # what its last telemetry said it runs
    # Results that came in while telemetry may still list the job (sampled before it ended).
    finished_lately: set[int] = field(default_factory=set)
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    gpu_percent: float | None = None
    unresponsive: bool = False
    link: WorkerLink | None = None

    def snapshot(self, worker_id: int) -> WorkerSnapshot:
        reg = self.registration
        return WorkerSnapshot(
            worker_id=worker_id,
            name=reg.name if reg else "",
            tags=reg.tags if reg else frozenset(),
            concurrency=reg.concurrency if reg else 0,
            # A job the worker still runs occupies a slot even after it was taken back.
            running=len(self.reported_running.union(self.running)),
            cpu_percent=self.cpu_percent,
            memory_percent=self.memory_percent,
            gpu_percent=self.gpu_percent,
            available=reg is not None and not self.unresponsive,
        )


@dataclass(frozen=True)
class SchedulerSettings:
    """Timing and retry limits of the scheduler."""

    dead_after_s: float
    recovery_sweep_s: float
    max_attempts: int
    rpc_timeout_s: float = defaults.RPC_TIMEOUT_MS / 1000


class Scheduler:
    """Owns the job queue and the worker view; all methods but `run` are thread-safe posts."""

    def __init__(
        self,
        database_path: Path,
        settings: SchedulerSettings,
        on_progress: Callable[[set[int]], None] = lambda workload_ids: None,
    ) -> None:
        """`on_progress` hears, once per round of events, which workloads had jobs end."""
        self._database_path = database_path
        self._settings = settings
        self._on_progress = on_progress
        self._settled_job_ids: list[int] = []  # ended (done or failed) in this round of events
        self._events: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._queue = FairQueue()
        self._workers: dict[int, _Worker] = {}
        self._last_job_id = 0
        self._last_full_sweep = 0.0
        self._db = None
        self.known_worker_ids: frozenset[int] = frozenset()  # replaced whole, read by any thread

    # Posting events (any thread) ---------------------------------------------------

    def jobs_queued(self) -> None:
        self._events.put(self._load_new_jobs)

    def job_finished(self, result: JobResult) -> None:
        self._events.put(lambda: self._on_reported_result(result))

    def worker_joined(self, registration: WorkerRegistration) -> None:
        self._events.put(lambda: self._on_join(registration))

    def telemetry(self, report: Telemetry) -> None:
        received_at = time.time()
        self._events.put(lambda: self._on_telemetry(report, received_at))

    def tick(self) -> None:
        posted_at = time.time()  # judge silence as of now, not when a busy thread gets to it
        self._events.put(lambda: self._sweep(posted_at))

    def stop(self) -> None:
        self._events.put(None)

    # The scheduler thread ----------------------------------------------------------

    def run(self) -> None:
        """Apply events and place jobs until `stop` is called."""
        self._db = datastore.connect(self._database_path)
        try:
            self._restore()
            while True:
                event = self._events.get()
                while event is not None:
                    event()
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        break
                if event is None:
                    return
                self._announce_progress()
                self._dispatch()
                self.known_worker_ids = frozenset(
                    worker_id for worker_id, w in self._workers.items() if w.registration
                )
        finally:
            for worker in self._workers.values():
                if worker.link:
                    worker.link.close()
            self._db.close()

    def _announce_progress(self) -> None:
        if self._settled_job_ids:
            self._on_progress(jobs.workloads_of(self._db, self._settled_job_ids))
            self._settled_job_ids.clear()

    def _restore(self) -> None:
        """After a (re)start, remember whose jobs were running and queue the rest."""
        now = time.time()
        for worker_id, job_ids in jobs.running_jobs_by_worker(self._db).items():
            self._workers[worker_id] = _Worker(None, now, dict.fromkeys(job_ids, now))
        self._load_new_jobs()
        self._last_full_sweep = now

    def _load_new_jobs(self) -> None:
        for job in jobs.load_queued_jobs(self._db, self._last_job_id):
            self._queue.push(job)
            self._last_job_id = max(self._last_job_id, job.job_id)

    def _requeue(self, job_ids: list[int]) -> None:
        for job in jobs.load_queued_jobs(self._db, job_ids=job_ids):
            self._queue.push(job, front=True)

    def _release(self, worker_id: int, keep: frozenset[int], reason: str) -> None:
        with transaction(self._db) as db:
            requeued, failed = jobs.release_worker_jobs(
                db, worker_id, keep, reason, self._settings.max_attempts
            )
        self._settled_job_ids += failed
        if requeued:
            log.info(
                "worker %s: %d job(s) back in the queue (%s)", worker_id, len(requeued), reason
            )
            self._requeue(requeued)

    def _on_join(self, reg: WorkerRegistration) -> None:
        old = self._workers.get(reg.worker_id)
        if old and old.link:
            old.link.close()
        self._release(reg.worker_id, reg.running_job_ids, "worker restarted while running the job")
        running = jobs.running_jobs_by_worker(self._db).get(reg.worker_id, set())
        now = time.time()
        self._workers[reg.worker_id] = _Worker(
            registration=reg,
            last_seen=now,
            running=dict.fromkeys(running, now),
            link=WorkerLink(
                reg.rpc_host,
                reg.rpc_port,
                reg.rpc_key,
                self._settings.rpc_timeout_s,
                lambda job, reason: self._events.put(lambda: self._on_refused(reg, job, reason)),
            ),
        )
        log.info("worker %s (%s) joined with %d slot(s)", reg.worker_id, reg.name, reg.concurrency)

    def _sender_is_genuine(self, worker_id: int, worker_key: str) -> bool:
        """Whether a message claiming to come from `worker_id` carries that worker's key."""
        worker = self._workers.get(worker_id)
        if worker is None or worker.registration is None:
            return False  # not joined with this controller yet; it will re-join on its own
        if hmac.compare_digest(
            worker_key.encode("utf-8", "surrogatepass"), worker.registration.rpc_key.encode()
        ):
            return True
        log.warning("dropped a message for worker %s without its key", worker_id)
        return False

    def _on_reported_result(self, result: JobResult) -> None:
        if self._sender_is_genuine(result.worker_id, result.worker_key):
            self._on_result(result)

    def _on_telemetry(self, report: Telemetry, received_at: float) -> None:
        if not self._sender_is_genuine(report.worker_id, report.worker_key):
            return
        worker = self._workers[report.worker_id]
        worker.last_seen = received_at
        worker.cpu_percent = report.cpu_percent
        worker.memory_percent = report.memory_percent
        worker.gpu_percent = (report.gpu or {}).get("utilization_percent")
        worker.unresponsive = False
        load = workers.Load(
            cpu_percent=report.cpu_percent,
            memory_percent=report.memory_percent,
            gpu=report.gpu,
            process_cpu_percent=report.process_cpu_percent,
            process_rss_bytes=report.process_rss_bytes,
            running_jobs=len(report.running_job_ids),
        )
        workers.record_telemetry(self._db, report.worker_id, load, received_at)
        reported = frozenset(report.running_job_ids)
        worker.reported_running = reported - worker.finished_lately
        worker.finished_lately &= reported  # forget a job once telemetry stops listing it
        self._release_lost_jobs(report.worker_id, worker, reported, received_at)

    def _release_lost_jobs(
        self, worker_id: int, worker: _Worker, reported: frozenset[int], received_at: float
    ) -> None:
        """Requeue jobs the worker no longer runs although no result came (a lost message).

        A job gets a grace period after assignment, so telemetry sampled before the job
        arrived does not count; a job that did finish is already done in the datastore,
        where the conditional update leaves it alone.
        """
        grace_s = self._settings.dead_after_s
        lost = [
            job_id
            for job_id, assigned_at in worker.running.items()
            if job_id not in reported and received_at - assigned_at > grace_s
        ]
        for job_id in lost:
            self._on_result(JobResult(worker_id, job_id, JobOutcome.FAILED.value, LOST_JOB_ERROR))

    def _on_result(self, result: JobResult) -> None:
        worker = self._workers.get(result.worker_id)
        if worker:
            worker.running.pop(result.job_id, None)
            worker.reported_running = worker.reported_running - {result.job_id}
            worker.finished_lately.add(result.job_id)
        if result.outcome != JobOutcome.FAILED.value:
            self._settled_job_ids.append(result.job_id)  # the API stored it done already
            return
        with transaction(self._db) as db:
            status = jobs.fail_attempt(
                db, result.job_id, result.worker_id, result.error, self._settings.max_attempts
            )
        if status is JobStatus.QUEUED:
            self._requeue([result.job_id])
        elif status is JobStatus.FAILED:
            self._settled_job_ids.append(result.job_id)
            log.warning("job %s failed for good: %s", result.job_id, result.error)

    def _sweep(self, now: float) -> None:
        """Recovery only: declare silent workers dead and pick up jobs whose hint was lost."""
        for worker_id, worker in list(self._workers.items()):
            if now - worker.last_seen > self._settings.dead_after_s:
                log.warning("worker %s is silent: declared dead", worker_id)
                if worker.link:
                    worker.link.close()
                del self._workers[worker_id]
                workers.mark_dead(self._db, worker_id)
                self._release(worker_id, frozenset(), "worker died while running the job")
        if now - self._last_full_sweep >= self._settings.recovery_sweep_s:
            self._last_full_sweep = now
            running = jobs.running_jobs_by_worker(self._db)
            for worker_id, worker in self._workers.items():
                still_running = running.get(worker_id, set())
                worker.running = {
                    job_id: at for job_id, at in worker.running.items() if job_id in still_running
                }
            self._load_new_jobs()
            # Only queued jobs the queue lacks are loaded: a full reload of a long queue
            # would stall the scheduler thread at every sweep.
            lost = [i for i in jobs.queued_job_ids(self._db) if i not in self._queue]
            for start in range(0, len(lost), LOAD_BATCH):
                for job in jobs.load_queued_jobs(
                    self._db, job_ids=lost[start : start + LOAD_BATCH]
                ):
                    self._queue.push(job)

    def _place(self, job: QueuedJob) -> int | None:
        snapshots = [w.snapshot(worker_id) for worker_id, w in self._workers.items()]
        avoid = frozenset([job.last_worker_id]) if job.last_worker_id is not None else frozenset()
        chosen = pick_worker(job.tags, snapshots, avoid)
        return None if chosen is None else chosen.worker_id

    def _dispatch(self) -> None:
        for job, worker_id in self._queue.drain(self._place):
            worker = self._workers[worker_id]
            attempt = jobs.assign_job(self._db, job.job_id, worker_id)
            if attempt is None:
                continue  # finished, failed or deleted meanwhile
            worker.running[job.job_id] = time.time()
            assignment = JobAssignment(
                job_id=job.job_id,
                workload_id=job.workload_id,
                image_number=job.image_number,
                filter_name=job.filter_name,
                params=job.params,
                attempt=attempt,
            )
            worker.link.send(assignment)

    def _on_refused(
        self, registration: WorkerRegistration, assignment: JobAssignment, reason: str
    ) -> None:
        """The worker did not take a job: it does not count as an attempt; try elsewhere.

        A refusal from a link of an earlier join is ignored: that join's jobs were already
        settled when the worker joined again.
        """
        worker_id = registration.worker_id
        worker = self._workers.get(worker_id)
        if worker is None or worker.registration is not registration:
            return
        log.warning("worker %s did not take job %s: %s", worker_id, assignment.job_id, reason)
        worker.running.pop(assignment.job_id, None)
        worker.unresponsive = True
        jobs.unassign_job(self._db, assignment.job_id, worker_id)
        self._requeue([assignment.job_id])
