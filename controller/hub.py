"""The controller's sockets and threads; pynng errors stop here.

- rep (the controller port): joins (a hello, then a request), workers' job results (a
  batch at a time) and job hints, each answered;
- sub (telemetry port): workers' load reports, about once per interval each;
- pub (broadcast port): heartbeats every interval, so workers notice a lost or new controller;
- pub (ipc in the data dir): which workloads had jobs end, for API requests that wait on them.

On PostgreSQL none of this starts before the controller is the active one
(`controller/leadership.py`): a standby binds nothing until the active one is gone.

Every socket refuses messages over the size limit (nng closes the connection); what the
rep and sub loops refuse is charged and logged by a PeerGate, so a flood of bad messages
costs each loop little and never crowds out genuine ones.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

import pynng

import datastore
from controller.config import ControllerConfig
from controller.join_challenges import JoinChallenges
from controller.leadership import Leadership, become_active
from controller.membership import admit_worker
from controller.peer_gate import PeerGate
from controller.progress_announcer import ProgressAnnouncer
from protocol import (
    Ack,
    ControllerHeartbeat,
    DecodeError,
    JobResults,
    JobsQueued,
    JoinHello,
    JoinRequest,
    Message,
    Telemetry,
    decode,
    excerpt,
    is_nonce,
    proves,
)
from scheduler import Scheduler
from scheduler.scheduler import SchedulerSettings

log = logging.getLogger(__name__)


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
            config.database,
            SchedulerSettings(
                dead_after_s=interval_s * config.dead_after_intervals,
                recovery_sweep_s=config.recovery_sweep_ms / 1000,
                max_attempts=config.max_attempts,
            ),
            on_progress=self._announce_progress,
        )
        limits = config.peer_limits
        self._challenges = JoinChallenges(
            config.join_token, limits.join_challenges_max, limits.join_challenge_ttl_ms / 1000
        )
        # The rpc key of each worker's latest join here, set before the worker learns it: a
        # message with another key is refused at the socket, before the scheduler's queue.
        self._issued_keys: dict[int, str] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.ports: tuple[int, int] = (0, 0)
        self.failed = False  # a thread died: the process should exit for a fresh start
        self._leadership: Leadership | None = None

    def wait_until_active(self) -> bool:
        """Wait, as a standby, until this controller may be the active one (at once on
        SQLite); False if asked to stop first."""
        self._leadership = become_active(self.config, self._stopping)
        return self._leadership is not None

    def start(self) -> None:
        """Bind the sockets and start the threads (once `wait_until_active`)."""
        host = self.config.host
        limit = self.config.peer_limits.max_message_bytes
        self._rep = pynng.Rep0(recv_max_size=limit)
        self._rep.listen(f"tcp://{host}:{self.config.port}")
        self._telemetry = pynng.Sub0(recv_max_size=limit)
        self._telemetry.subscribe(b"")
        telemetry_listener = self._telemetry.listen(f"tcp://{host}:{self.config.telemetry_port}")
        self._broadcast = pynng.Pub0(recv_max_size=limit)  # it never reads; bounded all the same
        broadcast_listener = self._broadcast.listen(f"tcp://{host}:{self.config.broadcast_port}")
        self.ports = (_bound_port(telemetry_listener), _bound_port(broadcast_listener))
        self._progress = ProgressAnnouncer(self.config.database, self.config.data_dir, limit)
        for target in (
            self.scheduler.run,
            self._serve_requests,
            self._receive_telemetry,
            self._beat,
        ):
            thread = threading.Thread(
                target=self._or_fail, args=(target,), name=target.__name__, daemon=True
            )
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
        for socket in (self._rep, self._telemetry, self._broadcast):
            socket.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._progress.close()  # after the scheduler's thread, which announces
        self._leadership.release()  # last: a standby takes over once nothing here writes

    def wait(self) -> None:
        """Until `request_stop`, or until a thread failed (then `failed` is set)."""
        self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    def _or_fail(self, loop: Callable[[], None]) -> None:
        """Run one of the controller's loops; if it dies (the datastore lost, say), the
        whole controller must stop: its state is the datastore's plus what the loops hold,
        and a process started afresh rebuilds both, as after any restart (its workers
        re-join). `dpip up` restarts it; elsewhere, its service manager."""
        try:
            loop()
        except Exception:
            if not self._stopping.is_set():
                log.critical(
                    "the controller's %s loop failed; stopping", loop.__name__, exc_info=True
                )
                self.failed = True
                self._stopping.set()

    def _serve_requests(self) -> None:
        conn = datastore.connect(self.config.database)
        gate = PeerGate("request", self.config.peer_limits)
        try:
            while True:
                try:
                    message = self._rep.recv_msg()
                except pynng.Closed:
                    return
                if not gate.admits(message):
                    continue  # no reply: rep forgets a request when the next one is read
                reply = self._answer(conn, gate, message)
                if not gate.admits(message):
                    continue  # its connection was closed meanwhile: no one to answer
                try:
                    self._rep.send(reply.encode())
                except pynng.Closed:
                    return
        finally:
            conn.close()

    def _answer(self, conn, gate: PeerGate, message: pynng.Message) -> Message:
        try:
            request = decode(message.bytes)
            if isinstance(request, JoinHello):
                return self._challenge(gate, message, request)
            if isinstance(request, JoinRequest):
                return self._join(conn, gate, message, request)
            if isinstance(request, JobResults):
                if self._sent_by_worker(request.worker_id, request.worker_key):
                    self.scheduler.jobs_finished(request)
                else:
                    gate.refuse(message, f"results for worker {request.worker_id} without its key")
                return Ack()  # as ever: a forger learns nothing from the answer
            if isinstance(request, JobsQueued):
                self.scheduler.jobs_queued()
                return Ack()
            gate.refuse(message, f"an unexpected {request.kind}")
            return Ack(ok=False, detail=f"unexpected message {request.kind}")
        except DecodeError as e:
            gate.refuse(message, f"a request: {e}")
            return Ack(ok=False, detail=str(e))
        except datastore.StoreUnavailable:
            raise  # its session is lost for every request after it: the controller stops
        except Exception:  # one bad request must not end the loop that serves all
            log.exception("request failed")
            return Ack(ok=False, detail="the controller failed on this request")

    def _challenge(self, gate: PeerGate, message: pynng.Message, hello: JoinHello) -> Message:
        gate.charge(message)  # a challenge is kept for the peer before it proved anything
        if not is_nonce(hello.worker_nonce):
            gate.refuse(message, "a join hello with a malformed nonce")
            return Ack(ok=False, detail="worker_nonce must be 32 lowercase hex digits")
        return self._challenges.issue(hello.worker_nonce, time.monotonic())

    def _join(self, conn, gate: PeerGate, message: pynng.Message, request: JoinRequest) -> Message:
        proofs = self._challenges.take(request.controller_nonce, time.monotonic())
        reply, registration = admit_worker(
            conn, self.config, request, proofs, self.ports, self.instance
        )
        if registration is None:
            name = excerpt(request.worker_name, self.config.peer_limits.log_quote_chars)
            gate.refuse(message, f"the join of {name!r}: {reply.reason}")
            return reply
        self._issued_keys[registration.worker_id] = registration.rpc_key
        self.scheduler.worker_joined(registration)
        return reply

    def _sent_by_worker(self, worker_id: int, worker_key: str) -> bool:
        """Whether a message carries the key of that worker's latest join here."""
        issued = self._issued_keys.get(worker_id)
        return issued is not None and proves(issued, worker_key)

    def _receive_telemetry(self) -> None:
        gate = PeerGate("telemetry", self.config.peer_limits)
        while True:
            try:
                message = self._telemetry.recv_msg()
            except pynng.Closed:
                return
            if not gate.admits(message):
                continue
            try:
                report = decode(message.bytes, Telemetry)
            except DecodeError as e:
                gate.refuse(message, f"a report: {e}")
                continue
            if self._sent_by_worker(report.worker_id, report.worker_key):
                self.scheduler.telemetry(report)
            else:
                gate.refuse(message, f"a report for worker {report.worker_id} without its key")

    def _announce_progress(self, workload_ids: set[int]) -> None:
        """Called on the scheduler thread."""
        if workload_ids:  # else their jobs were deleted meanwhile
            self._progress.announce(workload_ids)

    def _beat(self) -> None:
        interval_ms = self.config.telemetry_interval_ms
        while not self._stopping.wait(interval_ms / 1000):
            # A controller that lost its lock may have a successor already: it must not
            # go on (this loop's failure stops it), nor tell its workers it lives.
            self._leadership.confirm()
            heartbeat = ControllerHeartbeat(
                self.instance,
                int(time.time() * 1000),
                tuple(sorted(self.scheduler.known_worker_ids)),
            )
            try:
                self._broadcast.send(heartbeat.encode())
            except pynng.Closed:
                return
            self.scheduler.tick()
