"""A worker made of the test's own parts: a real rpyc server that takes every job it is sent
and keeps it, and telemetry that reports those jobs running, so they stay on it while the
test plays the worker's part over HTTP with the worker's real token."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pynng

from protocol import JobAssignment, JoinAccepted, SubmitAnswer, Telemetry
from tests.conftest import TELEMETRY_INTERVAL_MS, Client, join_over, wait_until
from worker.config import WorkerConfig
from worker.rpc_service import JobService, start_rpc_server


@dataclass
class JobHolder:
    """The holder's rpc side and what it holds; `client` carries its worker token."""

    client: Client | None = None
    key: str | None = None
    jobs: list[JobAssignment] = field(default_factory=list)
    alive: threading.Event = field(default_factory=threading.Event)

    def submit(self, batch: tuple[JobAssignment, ...]) -> tuple[SubmitAnswer, ...]:
        self.jobs += batch
        return (SubmitAnswer.ACCEPTED,) * len(batch)

    def die(self) -> None:
        """Fall silent, as a killed worker does: the controller declares it dead and takes
        its jobs back."""
        self.alive.clear()


def _keep_alive(accepted: JoinAccepted, holder: JobHolder, stop: threading.Event) -> None:
    """Report the held jobs as running while alive, so the holder keeps them."""
    with pynng.Pub0(dial=f"tcp://127.0.0.1:{accepted.telemetry_port}") as pub:
        while not stop.wait(TELEMETRY_INTERVAL_MS / 2000):
            if holder.alive.is_set():
                running = tuple(job.job_id for job in holder.jobs)
                report = Telemetry(accepted.worker_id, 0.0, 0.0, None, running, accepted.rpc_key)
                pub.send(report.encode())


@contextlib.contextmanager
def job_holder(
    cluster, name: str, tags: tuple[str, ...], concurrency: int, join_token: str
) -> Iterator[JobHolder]:
    """Join a holder with `tags`, taking up to `concurrency` jobs, until the block ends."""
    holder = JobHolder()
    service = JobService(lambda: holder.key, holder.submit)
    server = start_rpc_server(service, WorkerConfig("127.0.0.1", 0, name, "unused"))
    stop = threading.Event()
    try:
        wait_until(lambda: server.active, 10, "the holder's rpc server to listen")
        with pynng.Req0(recv_timeout=5000, send_timeout=5000) as sock:
            sock.dial(f"tcp://127.0.0.1:{cluster.controller_port}")
            accepted = join_over(sock, join_token, name, server.port, tags, concurrency=concurrency)
        assert isinstance(accepted, JoinAccepted), accepted
        holder.key = accepted.rpc_key
        holder.client = Client(cluster.url, accepted.worker_token)
        service.key_changed()
        holder.alive.set()
        threading.Thread(target=_keep_alive, args=(accepted, holder, stop), daemon=True).start()
        yield holder
    finally:
        stop.set()
        server.close()
