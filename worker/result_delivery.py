"""Deliver finished jobs' results to the controller: whatever has accumulated, in one message.

One thread sends; while a message is on its way, the next results gather, so a busy worker
sends a message per round trip rather than one per job, and an idle one sends each result
at once.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence

from foundation import defaults
from protocol import JobResult, JobResults, JoinAccepted, excerpt
from worker.controller_link import ControllerLink, ControllerUnavailable, max_message_bytes

log = logging.getLogger(__name__)


_EMPTY_BYTES = len(JobResults(0, ()).encode())


def _cost(result: JobResult) -> int:
    """What one more result adds to a message: its JSON and a comma."""
    return len(JobResults(0, (result,)).encode()) - _EMPTY_BYTES + 1


def result_messages(
    worker_id: int, worker_key: str, results: Sequence[JobResult], max_bytes: int
) -> Iterator[JobResults]:
    """The results in order, in messages that each encode to at most `max_bytes` (a result
    whose error alone is too long has it cut)."""
    envelope = len(JobResults(worker_id, (), worker_key).encode())
    batch: list[JobResult] = []
    size = envelope
    for result in results:
        cost = _cost(result)
        if envelope + cost > max_bytes:  # only a huge error text makes a result this long
            result = dataclasses.replace(result, error=excerpt(result.error, max_bytes // 8))
            cost = _cost(result)
        if batch and size + cost > max_bytes:
            yield JobResults(worker_id, tuple(batch), worker_key)
            batch, size = [], envelope
        batch.append(result)
        size += cost
    if batch:
        yield JobResults(worker_id, tuple(batch), worker_key)


class ResultDelivery:
    """The results waiting to go to the controller, and the thread that sends them."""

    def __init__(self, link: ControllerLink, session: Callable[[], JoinAccepted]) -> None:
        """`session` is the worker's current join, whose id and key the results carry."""
        self._link = link
        self._session = session
        self._max_bytes = max_message_bytes() // 2  # well within what the controller reads
        self._results: queue.SimpleQueue[list[JobResult]] = queue.SimpleQueue()
        self._undelivered = 0  # results not yet taken by the controller (or given up on)
        self._delivered = threading.Condition()

    def put(self, results: list[JobResult]) -> None:
        """Queue results for delivery; returns at once."""
        with self._delivered:
            self._undelivered += len(results)
        self._results.put(results)

    def wait_delivered(self, timeout_s: float) -> bool:
        """Wait until every queued result is delivered (or given up on)."""
        with self._delivered:
            return self._delivered.wait_for(lambda: self._undelivered == 0, timeout=timeout_s)

    def run(self) -> None:
        """Send what has accumulated, again and again (the delivery thread)."""
        while True:
            results = self._results.get()
            while True:
                try:
                    results += self._results.get_nowait()
                except queue.Empty:
                    break
            session = self._session()
            for message in result_messages(
                session.worker_id, session.rpc_key, results, self._max_bytes
            ):
                self._send(message)
            with self._delivered:
                self._undelivered -= len(results)
                self._delivered.notify_all()

    def _send(self, message: JobResults) -> None:
        """Try a few times, then give up: the lost-job check reconciles from telemetry."""
        for attempt in range(1, defaults.RESULT_DELIVERY_TRIES + 1):
            try:
                self._link.report(message)
                return
            except ControllerUnavailable as e:
                job_ids = excerpt(", ".join(str(result.job_id) for result in message.results))
                log.warning("results of jobs %s not delivered (try %d): %s", job_ids, attempt, e)
