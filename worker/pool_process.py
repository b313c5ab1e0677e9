"""One pool process: a spawned process that runs a slot's jobs one at a time.

A process per slot that the worker starts and ends itself (not a ProcessPoolExecutor), so a
job over its time limit, or a process killed under its job, costs that one process: it is
replaced and the other slots' jobs run on (an executor breaks as a whole when one of its
processes dies, and cannot stop one task).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext

from foundation.errors import DPIPError
from foundation.memory import keep_freed_memory
from imaging import apply_filter
from protocol import JobAssignment, JobOutcome
from worker.api_client import ApiClient, ApiUnavailable, JobTaken

log = logging.getLogger(__name__)

_client: ApiClient | None = None  # one per pool process, reused across jobs


class PoolProcessLost(DPIPError):
    """Raised when a pool process ends (killed, out of memory) before answering."""


class JobTimedOut(DPIPError):
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


def execute_job(assignment: JobAssignment, api_url: str, token: str) -> tuple[str, str]:
    """Download, filter and upload one image (in a pool process); return (outcome, error)."""
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


def serve_jobs(conn: Connection, parent_pid: int) -> None:
    """Say ready once imported, then run each (assignment, API URL, token) sent; None stops."""
    prepare_pool_process(parent_pid)
    conn.send(None)
    try:
        while (job := conn.recv()) is not None:
            conn.send(execute_job(*job))
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
        self._answer(timeout_s=None)
        return self

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def run(
        self, assignment: JobAssignment, api_url: str, token: str, time_limit_s: float
    ) -> tuple[str, str]:
        """Run one job; return (outcome, error), or raise JobTimedOut or PoolProcessLost."""
        try:
            self._conn.send((assignment, api_url, token))
        except OSError as e:  # it died while idle
            raise self._lost() from e
        return self._answer(time_limit_s)

    def _answer(self, timeout_s: float | None):
        if not self._conn.poll(timeout_s):
            self._kill()
            raise JobTimedOut(f"stopped at the worker's job time limit of {timeout_s:g} s")
        try:
            return self._conn.recv()
        except (EOFError, OSError) as e:
            raise self._lost() from e

    def _lost(self) -> PoolProcessLost:
        self._process.join()
        self._conn.close()
        return PoolProcessLost(
            f"pool process {self._process.pid} ended with exit code {self._process.exitcode}"
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
