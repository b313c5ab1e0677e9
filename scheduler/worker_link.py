"""The scheduler's rpyc links to its workers' JobServices, one per join; rpyc errors stop here.

A link sends whatever jobs the scheduler placed on its worker since its last call in one
`submit_jobs` call (several if they would fill more than a quarter of a frame), and hears
an answer per job.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import rpyc
from rpyc.core.vinegar import GenericException
from rpyc.utils.factory import connect_channel

from foundation import defaults
from foundation.errors import DPIPError
from protocol import JobAssignment, JobBatch, SubmitAnswer
from protocol.rpc import SAFE_RPYC_CONFIG, BoundedChannel, connect_proof
from scheduler.worker_registry import WorkerRegistration

log = logging.getLogger(__name__)

ANSWERS = frozenset(answer.value for answer in SubmitAnswer)
# The jobs of one call, encoded, stay within a quarter of the frame bound both ends read.
CALL_MAX_BYTES = defaults.RPC_MAX_FRAME_BYTES // 4

# Hears jobs the worker did not take: the worker's answer (None: no answer came), and why.
OnRefused = Callable[[tuple[JobAssignment, ...], SubmitAnswer | None, str], None]


def split_calls(
    jobs: Sequence[JobAssignment], max_bytes: int = CALL_MAX_BYTES
) -> Iterator[tuple[JobAssignment, ...]]:
    """The jobs in order, cut into calls whose encoded batch stays within `max_bytes`."""
    call: list[JobAssignment] = []
    size = 0
    for job in jobs:
        job_bytes = len(JobBatch((job,)).encode())  # one job with the batch's envelope
        if call and size + job_bytes > max_bytes:
            yield tuple(call)
            call, size = [], 0
        call.append(job)
        size += job_bytes
    if call:
        yield tuple(call)


class WorkerUnreachable(DPIPError):
    """Raised when a worker cannot be reached over rpyc or gives no answer the link knows."""


class WorkerLink:
    """A lazily opened rpyc connection to a worker, authenticated per call with its rpc key.

    Calls go out from the link's own thread, so a hung worker delays only its own jobs,
    never the scheduler. Jobs the worker did not take go to `on_refused` with the worker's
    answer, or with None when no answer came (a connection error or a timeout).
    """

    def __init__(
        self,
        host: str,
        port: int,
        rpc_key: str,
        timeout_s: float,
        on_refused: OnRefused,
        max_frame_bytes: int = defaults.RPC_MAX_FRAME_BYTES,
    ) -> None:
        self._host = host
        self._max_frame_bytes = max_frame_bytes
        self._port = port
        self._rpc_key = rpc_key
        self._timeout_s = timeout_s
        self._on_refused = on_refused
        self._conn: rpyc.Connection | None = None
        self._outbox: queue.SimpleQueue[tuple[JobAssignment, ...] | None] = queue.SimpleQueue()
        threading.Thread(target=self._send_loop, name=f"rpc-{host}:{port}", daemon=True).start()

    def send(self, assignments: Sequence[JobAssignment]) -> None:
        """Queue jobs for the worker; returns at once."""
        self._outbox.put(tuple(assignments))

    def close(self) -> None:
        """Stop once the jobs already queued here are sent (or refused)."""
        self._outbox.put(None)

    def _send_loop(self) -> None:
        closing = False
        while not closing and (batch := self._outbox.get()) is not None:
            jobs = list(batch)
            while True:  # what queued up during the last call goes in the next one
                try:
                    more = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                jobs += more
            for call in split_calls(jobs):
                self._submit(call)
        self._disconnect()

    def _submit(self, jobs: tuple[JobAssignment, ...]) -> None:
        """Hand jobs to the worker; report those it did not take, grouped by its answer."""
        try:
            answers = self._call(jobs)
        except WorkerUnreachable as e:
            self._on_refused(jobs, None, str(e))
            return
        refused: dict[SubmitAnswer, list[JobAssignment]] = {}
        for job, answer in zip(jobs, answers, strict=True):
            if answer is not SubmitAnswer.ACCEPTED:
                refused.setdefault(answer, []).append(job)
        where = f"{self._host}:{self._port}"
        for answer, not_taken in refused.items():
            self._on_refused(tuple(not_taken), answer, f"worker at {where} answered {answer.value}")

    def _call(self, jobs: tuple[JobAssignment, ...]) -> list[SubmitAnswer]:
        """The worker's answer to each job; raise WorkerUnreachable without one."""
        try:
            if self._conn is None:
                stream = rpyc.SocketStream.connect(
                    self._host, self._port, timeout=self._timeout_s, nodelay=True
                )
                stream.write(connect_proof(self._rpc_key))  # before rpyc's first frame
                self._conn = connect_channel(
                    BoundedChannel(stream, self._max_frame_bytes),
                    rpyc.VoidService,
                    {**SAFE_RPYC_CONFIG, "sync_request_timeout": self._timeout_s},
                )
            answers = self._conn.root.submit_jobs(self._rpc_key, JobBatch(jobs).encode())
        except (EOFError, OSError, TimeoutError, AttributeError, GenericException) as e:
            self._disconnect()
            raise WorkerUnreachable(f"rpc to {self._host}:{self._port} failed: {e!r}") from e
        # One answer per job, or one for the whole call (a wrong key, say).
        if (
            type(answers) is not tuple
            or len(answers) not in (1, len(jobs))
            or not all(type(a) is str and a in ANSWERS for a in answers)
        ):
            raise WorkerUnreachable(f"worker at {self._host}:{self._port} gave no known answer")
        return [SubmitAnswer(a) for a in answers] * (len(jobs) // len(answers))

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except (EOFError, OSError) as e:
                log.debug("closing rpc connection: %s", e)
            self._conn = None


class Link(Protocol):
    """What the scheduler needs of a worker's link: a `WorkerLink`, or a stub in tests."""

    def send(self, assignments: Sequence[JobAssignment]) -> None: ...

    def close(self) -> None: ...


LinkOpener = Callable[[WorkerRegistration, OnRefused], Link]


def rpc_link_opener(timeout_s: float) -> LinkOpener:
    """Open `WorkerLink`s whose calls time out after `timeout_s`."""

    def open_link(reg: WorkerRegistration, on_refused: OnRefused) -> Link:
        return WorkerLink(reg.rpc_host, reg.rpc_port, reg.rpc_key, timeout_s, on_refused)

    return open_link


class WorkerLinks:
    """The link of each joined worker: opened at its join, closed when it joins again or dies.

    A closed link still sends what it was given; what the worker refuses through it is
    reported with that join's registration, which the core then ignores.
    """

    def __init__(self, open_link: LinkOpener) -> None:
        self._open_link = open_link
        self._links: dict[int, Link] = {}

    def open(self, registration: WorkerRegistration, on_refused: OnRefused) -> None:
        self.close(registration.worker_id)
        self._links[registration.worker_id] = self._open_link(registration, on_refused)

    def send(self, worker_id: int, assignments: Sequence[JobAssignment]) -> None:
        self._links[worker_id].send(assignments)

    def close(self, worker_id: int) -> None:
        link = self._links.pop(worker_id, None)
        if link is not None:
            link.close()

    def close_all(self) -> None:
        for worker_id in list(self._links):
            self.close(worker_id)
