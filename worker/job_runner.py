"""Run jobs in a pool of processes, one per slot, so filtering really uses every core."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from dpip.memory import keep_freed_memory
from imaging import apply_filter
from protocol import JobAssignment, JobOutcome, JobResult
from worker.api_client import ApiClient, ApiUnavailable, JobTaken

log = logging.getLogger(__name__)

_client: ApiClient | None = None  # one per pool process, reused across jobs


def _watch_parent(parent_pid: int) -> None:
    """Exit when the worker process is gone (killed with -9), instead of lingering."""
    while os.getppid() == parent_pid:
        time.sleep(1)  # recovery only: nothing else tells a pool process its parent died
    os._exit(1)


def prepare_pool_process(parent_pid: int) -> None:
    """Leave Ctrl-C to the worker, die with it, and keep image buffers' memory for reuse."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def execute_job(assignment: JobAssignment, api_url: str, token: str) -> tuple[str, str]:
    """Download, filter and upload one image (runs in a pool process); return (outcome, error)."""
    global _client
    if _client is None or _client.api_url != api_url.rstrip("/"):
        _client = ApiClient(api_url, token)
    _client.token = token
    try:
        original = _client.download_original(assignment.workload_id, assignment.image_number)
        try:
            result = apply_filter(assignment.filter_name, assignment.params, original)
        except Exception as e:  # any decoder or filter failure is the job's failure
            return JobOutcome.FAILED.value, f"filter {assignment.filter_name} failed: {e!r}"
        _client.upload_filtered(assignment.workload_id, assignment.image_number, result)
    except JobTaken as e:
        return JobOutcome.DISCARDED.value, str(e)
    except ApiUnavailable as e:
        return JobOutcome.FAILED.value, str(e)
    return JobOutcome.DONE.value, ""


class JobRunner:
    """Accepts jobs up to the concurrency limit and reports each one's result."""

    def __init__(self, concurrency: int, report: Callable[[JobResult], None]) -> None:
        self.concurrency = concurrency
        self._report = report
        self._pool = ProcessPoolExecutor(
            max_workers=concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=prepare_pool_process,
            initargs=(os.getpid(),),
        )
        # Start every process now (each imports Pillow and requests), not at the first job.
        warm_ups = [self._pool.submit(time.sleep, 0.05) for _ in range(concurrency)]
        for warm_up in warm_ups:
            warm_up.result()
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._api: tuple[int, str, str] | None = None  # worker id, API URL, token

    def set_session(self, worker_id: int, api_url: str, token: str) -> None:
        self._api = (worker_id, api_url, token)

    @property
    def running_job_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._running))

    def submit(self, assignment: JobAssignment) -> bool:
        """Start a job unless every slot is busy or the job already runs here."""
        if self._api is None:
            return False
        worker_id, api_url, token = self._api
        with self._lock:
            if len(self._running) >= self.concurrency or assignment.job_id in self._running:
                return False
            self._running.add(assignment.job_id)
        started = time.monotonic()
        future = self._pool.submit(execute_job, assignment, api_url, token)
        future.add_done_callback(lambda f: self._finish(assignment, worker_id, started, f))
        return True

    def _finish(
        self, assignment: JobAssignment, worker_id: int, started: float, future: Future
    ) -> None:
        try:
            outcome, error = future.result()
        except Exception as e:  # the pool process died (killed, out of memory)
            outcome, error = JobOutcome.FAILED.value, f"worker process failed: {e!r}"
        with self._lock:
            self._running.discard(assignment.job_id)
        duration_ms = int((time.monotonic() - started) * 1000)
        if outcome != JobOutcome.DONE.value:
            log.warning("job %s %s: %s", assignment.job_id, outcome, error)
        current_worker_id = self._api[0] if self._api else worker_id
        self._report(JobResult(current_worker_id, assignment.job_id, outcome, error, duration_ms))

    def shutdown(self, wait: bool) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
