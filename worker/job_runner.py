"""Run jobs in pool processes, one per slot, so filtering really uses every core.

Each slot is a thread that hands its jobs to its own pool process and waits at most the job
time limit for each. A slot whose process overran (killed) or died gets a new one before its
next job, and the job is reported failed, so the scheduler retries it (elsewhere if it can)
and the worker's books (running jobs, telemetry) stay right.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from foundation import defaults
from protocol import JobAssignment, JobOutcome, JobResult, SubmitAnswer
from worker.pool_process import JobTimedOut, PoolProcess, PoolProcessLost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _QueuedJob:
    assignment: JobAssignment
    worker_id: int
    api_url: str
    token: str


class JobRunner:
    """Accepts jobs up to the concurrency limit and reports each one's result."""

    def __init__(
        self,
        concurrency: int,
        report: Callable[[JobResult], None],
        time_limit_s: float = defaults.JOB_TIME_LIMIT_S,
    ) -> None:
        self.concurrency = concurrency
        self.time_limit_s = time_limit_s
        self._report = report
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._closing = threading.Event()
        self._api: tuple[int, str, str] | None = None  # worker id, API URL, token
        self._jobs: queue.SimpleQueue[_QueuedJob | None] = queue.SimpleQueue()
        # Start every process now, side by side (each imports Pillow), not at the first job.
        processes = [PoolProcess(self._context) for _ in range(concurrency)]
        self._slots = [
            threading.Thread(
                target=self._serve_slot, args=(process.wait_ready(),), name=f"slot-{i}", daemon=True
            )
            for i, process in enumerate(processes)
        ]
        for slot in self._slots:
            slot.start()

    def set_session(self, worker_id: int, api_url: str, token: str) -> None:
        self._api = (worker_id, api_url, token)

    @property
    def running_job_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._running))

    def submit(self, assignment: JobAssignment) -> SubmitAnswer:
        """Start a job unless not joined yet or stopping, every slot is busy, or it runs here.

        A slot counts as busy until its job's pool process answered, which is before the
        job's result goes out: the scheduler counts it the same way.
        """
        if self._api is None:
            return SubmitAnswer.NOT_READY
        worker_id, api_url, token = self._api
        with self._lock:
            if self._closing.is_set():
                return SubmitAnswer.NOT_READY
            if assignment.job_id in self._running:
                return SubmitAnswer.REFUSED
            if len(self._running) >= self.concurrency:
                return SubmitAnswer.BUSY
            self._running.add(assignment.job_id)
            self._jobs.put(_QueuedJob(assignment, worker_id, api_url, token))
        return SubmitAnswer.ACCEPTED

    def _serve_slot(self, process: PoolProcess) -> None:
        while (job := self._jobs.get()) is not None:
            process = self._alive_or_new(process)  # it may have died while idle
            self._run(process, job)
            process = self._alive_or_new(process)  # killed over time, or died under the job
        process.stop()

    def _run(self, process: PoolProcess, job: _QueuedJob) -> None:
        started = time.monotonic()
        try:
            outcome, error = process.run(job.assignment, job.api_url, job.token, self.time_limit_s)
        except (JobTimedOut, PoolProcessLost) as e:
            outcome, error = JobOutcome.FAILED.value, str(e)
        with self._lock:
            self._running.discard(job.assignment.job_id)
        duration_ms = int((time.monotonic() - started) * 1000)
        if outcome != JobOutcome.DONE.value:
            log.warning("job %s %s: %s", job.assignment.job_id, outcome, error)
        worker_id = self._api[0] if self._api else job.worker_id
        self._report(JobResult(worker_id, job.assignment.job_id, outcome, error, duration_ms))

    def _alive_or_new(self, process: PoolProcess) -> PoolProcess:
        """Return `process` if it still runs, else a started replacement, tried until one
        starts; once stopping, tried once (a stop signal to the process group ends a starting
        one), and on failure the dead one: a job left for it then fails."""
        while not process.alive:
            try:
                return PoolProcess(self._context).wait_ready()
            except (OSError, PoolProcessLost) as e:
                if self._closing.is_set():
                    log.warning("no new pool process while stopping: %s", e)
                    return process
                retry_s = defaults.POOL_PROCESS_START_RETRY_S
                log.error("could not start a pool process (%s); retrying in %g s", e, retry_s)
                self._closing.wait(retry_s)
        return process

    def shutdown(self, wait: bool) -> None:
        """Take no more jobs; each slot runs the jobs it took, then ends its process."""
        with self._lock:
            self._closing.set()
            for _ in self._slots:
                self._jobs.put(None)
        if wait:
            for slot in self._slots:
                slot.join()
