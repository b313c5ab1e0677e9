"""One pool process: a spawned process that runs a slot's batches of jobs, one at a time.

A process per slot that the worker starts and ends itself (not a ProcessPoolExecutor), so a
job over its time limit, or a process killed under its job, costs that one process: it is
replaced and the other slots' jobs run on (an executor breaks as a whole when one of its
processes dies, and cannot stop one task).

A batch's images stay in the pool process: one request downloads its originals, one
uploads its results, and the filters run in turn between. The process says when each next
job's filter starts, so the slot holds each job to the time limit and knows whose step it
was when the process overran or died: a batch's download counts towards its first job's
time, its upload towards its last's.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext

from foundation.errors import DPIPError
from foundation.memory import keep_freed_memory
from imaging import apply_filter
from protocol import JobAssignment, JobOutcome
from worker.api_client import ApiClient, ApiUnavailable, ImageKey, JobTaken

log = logging.getLogger(__name__)

_client: ApiClient | None = None  # one per pool process, reused across batches

Outcome = tuple[str, str]  # a JobOutcome value, and the error


class BatchStopped(DPIPError):
    """Raised when a pool process stops running a batch; `index` is the job whose step it was."""

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


class PoolProcessLost(BatchStopped):
    """Raised when a pool process ends (killed, out of memory) before answering."""


class JobTimedOut(BatchStopped):
    """Raised when a job runs past its time limit (its pool process is then killed)."""


def _watch_parent(parent_pid: int) -> None:
    """Exit when the worker process is gone (killed with -9), instead of lingering."""
    while os.getppid() == parent_pid:
        time.sleep(1)  # recovery only: nothing else tells a busy pool process its parent died
    os._exit(1)


def prepare_pool_process(parent_pid: int) -> None:
    """Leave stop signals to the worker, die with it, and keep image buffers' memory for reuse.

    A Ctrl-C or a SIGTERM sent to the worker's whole process group (a terminal, systemd)
    must not kill a running job: the worker drains, then ends its pool processes itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    keep_freed_memory()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _client_for(api_url: str, token: str) -> ApiClient:
    global _client
    if _client is None or _client.api_url != api_url.rstrip("/"):
        _client = ApiClient(api_url, token)
    _client.token = token
    return _client


def _upload_outcome(status: str, message: str) -> Outcome:
    """What the API's answer for one result means for its job."""
    if status == "stored":
        return JobOutcome.DONE.value, ""
    if status == "not_assigned":
        return JobOutcome.DISCARDED.value, message
    return JobOutcome.FAILED.value, f"the API refused the result ({status}): {message}"


def execute_batch(
    jobs: Sequence[JobAssignment], api_url: str, token: str, next_job: Callable[[int], None]
) -> list[Outcome]:
    """Download, filter and upload a batch (in a pool process); return each job's outcome.

    `next_job(i)` is called as the filter of job i > 0 starts.
    """
    client = _client_for(api_url, token)
    keys: list[ImageKey] = [(job.workload_id, job.image_number) for job in jobs]
    try:
        originals = client.download_originals(keys)
    except (JobTaken, ApiUnavailable) as e:
        outcome = JobOutcome.DISCARDED if isinstance(e, JobTaken) else JobOutcome.FAILED
        return [(outcome.value, str(e))] * len(jobs)
    outcomes: dict[int, Outcome] = {}
    results: list[tuple[ImageKey, bytes]] = []
    for index, (job, key) in enumerate(zip(jobs, keys, strict=True)):
        if index:
            next_job(index)
        original = originals.pop(key, None)
        if original is None:
            outcomes[index] = (JobOutcome.DISCARDED.value, "the job is no longer this worker's")
            continue
        try:
            results.append((key, apply_filter(job.filter_name, job.params, original)))
        except Exception as e:  # any decoder or filter failure is the job's failure
            outcomes[index] = (JobOutcome.FAILED.value, f"filter {job.filter_name} failed: {e!r}")
    answers: dict[ImageKey, Outcome] = {}
    if results:
        try:
            stored = client.upload_results(results)
            answers = {key: _upload_outcome(*answer) for key, answer in stored.items()}
        except (JobTaken, ApiUnavailable) as e:
            outcome = JobOutcome.DISCARDED if isinstance(e, JobTaken) else JobOutcome.FAILED
            answers = {key: (outcome.value, str(e)) for key, _ in results}
    no_answer = (JobOutcome.FAILED.value, "the API did not answer for this result")
    return [outcomes.get(index) or answers.get(key, no_answer) for index, key in enumerate(keys)]


def serve_jobs(conn: Connection, parent_pid: int) -> None:
    """Say ready once imported, then run each (jobs, API URL, token) sent; None stops.

    Sends ("next", i) as job i > 0 of a batch starts, then ("done", outcomes).
    """
    prepare_pool_process(parent_pid)
    conn.send(None)
    try:
        while (batch := conn.recv()) is not None:
            jobs, api_url, token = batch
            outcomes = execute_batch(jobs, api_url, token, lambda i: conn.send(("next", i)))
            conn.send(("done", outcomes))
    except EOFError:
        return  # the worker is gone


class PoolProcess:
    """The worker's handle on one pool process."""

    def __init__(self, context: SpawnContext) -> None:
        """Start the process; `wait_ready` waits for its imports (Pillow: not a job's cost)."""
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=serve_jobs, args=(child_end, os.getpid()), name="dpip-pool", daemon=True
        )
        self._process.start()
        child_end.close()  # so the worker's end reads EOF when the process dies

    def wait_ready(self) -> PoolProcess:
        """Return self once it has started; raise PoolProcessLost if it died starting."""
        self._answer(timeout_s=None, index=0)
        return self

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def run(
        self, jobs: Sequence[JobAssignment], api_url: str, token: str, time_limit_s: float
    ) -> list[Outcome]:
        """Run a batch; return each job's (outcome, error), or raise JobTimedOut or
        PoolProcessLost naming the job whose step it was."""
        try:
            self._conn.send((tuple(jobs), api_url, token))
        except OSError as e:  # it died while idle
            raise self._lost(index=0) from e
        index = 0
        while True:
            kind, value = self._answer(time_limit_s, index)
            if kind == "done":
                return value
            index = value  # job `index` started: the time limit starts again for it

    def _answer(self, timeout_s: float | None, index: int):
        if not self._conn.poll(timeout_s):
            self._kill()
            raise JobTimedOut(f"stopped at the worker's job time limit of {timeout_s:g} s", index)
        try:
            return self._conn.recv()
        except (EOFError, OSError) as e:
            raise self._lost(index) from e

    def _lost(self, index: int) -> PoolProcessLost:
        self._process.join()
        self._conn.close()
        return PoolProcessLost(
            f"pool process {self._process.pid} ended with exit code {self._process.exitcode}",
            index,
        )

    def stop(self) -> None:
        """Let it finish and exit (it has no job: its slot is done with it)."""
        try:
            self._conn.send(None)
        except OSError as e:
            log.debug("pool process %s already gone: %s", self._process.pid, e)
        self._process.join()
        self._conn.close()

    def _kill(self) -> None:
        self._process.kill()
        self._process.join()
        self._conn.close()
