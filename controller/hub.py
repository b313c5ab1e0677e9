"""The controller's sockets and threads; pynng errors stop here.

- rep (the controller port): joins, job results and job hints, each answered;
- sub (telemetry port): workers' load reports, about once per interval each;
- pub (broadcast port): heartbeats every interval, so workers notice a lost or new controller;
- pub (ipc in the data dir): which workloads had jobs end, for API requests that wait on them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time

import pynng

import datastore
from controller.config import ControllerConfig
from controller.membership import admit_worker
from protocol import (
    Ack,
    ControllerHeartbeat,
    DecodeError,
    JobResult,
    JobsQueued,
    JoinRequest,
    Message,
    Telemetry,
    WorkloadsProgressed,
    decode,
    progress_events_address,
)
from scheduler import Scheduler
from scheduler.scheduler import SchedulerSettings

log = logging.getLogger(__name__)


def _receive(socket: pynng.Socket) -> bytes:
    """Receive one message; an empty one (which pynng cannot convert) reads as b""."""
    try:
        return socket.recv()
    except pynng.Closed:
        raise
    except RuntimeError:
        return b""


def _bound_port(listener: pynng.Listener) -> int:
    # pynng's InAddr.port is in network byte order; the printed form is right.
    return int(str(listener.local_address).rsplit(":", 1)[1])


class Controller:
    """Runs the hub's socket loops and the scheduler thread until stopped."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.instance = secrets.token_hex(8)
        interval_s = config.telemetry_interval_ms / 1000
        self.scheduler = Scheduler(
            config.database_path,
            SchedulerSettings(
                dead_after_s=interval_s * config.dead_after_intervals,
                recovery_sweep_s=config.recovery_sweep_ms / 1000,
                max_attempts=config.max_attempts,
            ),
            on_progress=self._announce_progress,
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.ports: tuple[int, int] = (0, 0)

    def start(self) -> None:
        """Bind the sockets and start the threads."""
        host = self.config.host
        self._rep = pynng.Rep0()
        self._rep.listen(f"tcp://{host}:{self.config.port}")
        self._telemetry = pynng.Sub0()
        self._telemetry.subscribe(b"")
        telemetry_listener = self._telemetry.listen(f"tcp://{host}:{self.config.telemetry_port}")
        self._broadcast = pynng.Pub0()
        broadcast_listener = self._broadcast.listen(f"tcp://{host}:{self.config.broadcast_port}")
        self.ports = (_bound_port(telemetry_listener), _bound_port(broadcast_listener))
        self._progress = pynng.Pub0()
        self._progress.listen(progress_events_address(self.config.data_dir))
        for target in (
            self.scheduler.run,
            self._serve_requests,
            self._receive_telemetry,
            self._beat,
        ):
            thread = threading.Thread(target=target, name=target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "controller %s on %s:%s (telemetry %s, broadcast %s)",
            self.instance,
            host,
            self.config.port,
            *self.ports,
        )

    def stop(self) -> None:
        """Close the sockets (which ends their loops) and stop the scheduler."""
        self._stopping.set()
        self.scheduler.stop()
        for socket in (self._rep, self._telemetry, self._broadcast, self._progress):
            socket.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait(self) -> None:
        self._stopping.wait()

    def _serve_requests(self) -> None:
        conn = datastore.connect(self.config.database_path)
        try:
            while True:
                try:
                    data = _receive(self._rep)
                except pynng.Closed:
                    return
                try:
                    reply = self._answer(conn, data)
                except DecodeError as e:
                    reply = Ack(ok=False, detail=str(e))
                except Exception:  # one bad request must not end the loop that serves all
                    log.exception("request failed")
                    reply = Ack(ok=False, detail="the controller failed on this request")
                try:
                    self._rep.send(reply.encode())
                except pynng.Closed:
                    return
        finally:
            conn.close()

    def _answer(self, conn, data: bytes) -> Message:
        message = decode(data)
        if isinstance(message, JoinRequest):
            reply, registration = admit_worker(
                conn, self.config, message, self.ports, self.instance
            )
            if registration is not None:
                self.scheduler.worker_joined(registration)
            else:
                log.warning("refused join of %r: %s", message.worker_name, reply.reason)
            return reply
        if isinstance(message, JobResult):
            self.scheduler.job_finished(message)
            return Ack()
        if isinstance(message, JobsQueued):
            self.scheduler.jobs_queued()
            return Ack()
        return Ack(ok=False, detail=f"unexpected message {message.kind}")

    def _receive_telemetry(self) -> None:
        while True:
            try:
                data = _receive(self._telemetry)
            except pynng.Closed:
                return
            try:
                self.scheduler.telemetry(decode(data, Telemetry))
            except DecodeError as e:
                log.warning("dropped bad telemetry: %s", e)

    def _announce_progress(self, workload_ids: set[int]) -> None:
        """Called on the scheduler thread; a pub socket never blocks, with or without readers."""
        if not workload_ids:
            return  # their jobs were deleted meanwhile
        with contextlib.suppress(pynng.Closed):
            self._progress.send(WorkloadsProgressed(tuple(sorted(workload_ids))).encode())

    def _beat(self) -> None:
        interval_ms = self.config.telemetry_interval_ms
        while not self._stopping.wait(interval_ms / 1000):
            heartbeat = ControllerHeartbeat(
                self.instance,
                int(time.time() * 1000),
                interval_ms,
                tuple(sorted(self.scheduler.known_worker_ids)),
            )
            try:
                self._broadcast.send(heartbeat.encode())
            except pynng.Closed:
                return
            self.scheduler.tick()
