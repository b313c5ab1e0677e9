"""The worker's life: join, take jobs, report load and results, re-join when the controller is lost.

First SIGTERM/SIGINT: stop taking jobs, finish the running ones, leave. Second: leave now.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time

from foundation import defaults
from protocol import JoinAccepted, JoinRequest, Telemetry
from worker.config import WorkerConfig
from worker.controller_link import (
    ControllerLink,
    ControllerNotProven,
    ControllerUnavailable,
    JoinRefusedError,
)
from worker.job_runner import JobRunner
from worker.result_delivery import ResultDelivery
from worker.rpc_service import JobService, start_rpc_server
from worker.telemetry import LoadSampler, ProcessSampler

log = logging.getLogger(__name__)


class WorkerAgent:
    """Owns a worker's sockets, its rpyc server and its job runner."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._stopping = threading.Event()
        self._session: JoinAccepted | None = None
        self._joined = threading.Event()
        self._jobs_finished = threading.Event()  # set at shutdown once running jobs are done
        self._fatal: JoinRefusedError | None = None
        self.link = ControllerLink(config.controllers, config.request_timeout_ms)
        self._delivery = ResultDelivery(self.link, lambda: self._session)
        self.runner = JobRunner(
            config.concurrency, self._delivery.put, config.job_time_limit_s, config.prefetch
        )
        self._service = JobService(self._current_rpc_key, self.runner.submit)
        self.rpc_server = start_rpc_server(self._service, config)

    def _current_rpc_key(self) -> str | None:
        session = self._session
        return None if session is None or self._stopping.is_set() else session.rpc_key

    def work(self) -> None:
        """Run until a signal asks to stop; re-join whenever the controller is lost.

        The main thread only waits, so signal handlers run at once; sockets block elsewhere.
        """
        self._install_signal_handlers()
        self._threads = [
            threading.Thread(target=target, name=target.__name__, daemon=True)
            for target in (self._stay_joined, self._publish_telemetry, self._delivery.run)
        ]
        for thread in self._threads:
            thread.start()
        try:
            self._stopping.wait()
        finally:
            self._shut_down()
        if self._fatal is not None:
            raise self._fatal

    def _stay_joined(self) -> None:
        try:
            while not self._stopping.is_set():
                session = self._join()
                if session is None:
                    return
                self._watch_controller(session)
        except JoinRefusedError as e:
            self._fatal = e
            self._stopping.set()

    def _install_signal_handlers(self) -> None:
        def handle(signum, _frame):
            if self._stopping.is_set():
                log.warning("second signal: leaving now")
                os._exit(1)
            log.info("signal %s: finishing running jobs, then leaving", signum)
            self._stopping.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _join(self) -> JoinAccepted | None:
        delay = 0.1
        while not self._stopping.is_set():
            request = JoinRequest(
                worker_name=self.config.worker_name,
                tags=self.config.tags,
                concurrency=self.config.concurrency,
                rpc_host=self.config.advertise_host,
                rpc_port=self.rpc_server.port,
                controller_nonce="",  # the handshake fills in these two
                proof="",
                running_job_ids=self.runner.held_job_ids,
                # Renews this membership, if it still lives, so running jobs' tokens stay valid.
                token_id=self._session.token_id if self._session else "",
                prefetch=self.config.prefetch,
            )
            try:
                session = self.link.join(request, self.config.join_token)
            except ControllerUnavailable as e:
                if isinstance(e, ControllerNotProven) and self._session is None:
                    # Never joined: most likely a wrong join token, which retrying cannot fix.
                    raise JoinRefusedError(str(e)) from e
                log.info("controller not reachable (%s); retrying in %.1fs", e, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, defaults.MAX_JOIN_BACKOFF_MS / 1000)
                continue
            # Take jobs first: the scheduler may send one as soon as it has stored the join.
            self.runner.set_session(session.api_url, session.worker_token)
            previous, self._session = self._session, session
            if previous is not None and previous.token_id != session.token_id:
                # A new membership: the controller took back every job of the old one.
                self.runner.drop_waiting("taken back when the worker joined anew")
            self._service.key_changed()
            self.link.open_channels(session.telemetry_port, session.broadcast_port)
            self._joined.set()
            log.info("joined as worker %s; API at %s", session.worker_id, session.api_url)
            return session
        return None

    def _watch_controller(self, session: JoinAccepted) -> None:
        """Return when the controller falls silent, restarts, or the token needs renewing."""
        silence_s = session.telemetry_interval_ms * defaults.DEAD_AFTER_INTERVALS / 1000
        # Both ends of the token's life are on the controller's clock, so skew does not matter.
        token_life_s = (session.token_expires_at_ms - session.accepted_at_ms) / 1000
        renew_at = time.monotonic() + token_life_s / 2 if session.token_expires_at_ms else math.inf
        heard_at = time.monotonic()
        unknown_in_a_row = 0
        while not self._stopping.is_set():
            if time.monotonic() >= renew_at:
                log.info("worker token half expired; re-joining for a fresh one")
                return
            # Short waits, so a stop request is seen quickly.
            heartbeat = self.link.next_heartbeat(defaults.HEARTBEAT_WAIT_SLICE_MS)
            if heartbeat is None:
                if time.monotonic() - heard_at < silence_s:
                    continue
                log.warning("controller silent for %.1f s; re-joining", silence_s)
                return
            heard_at = time.monotonic()
            if heartbeat.controller_instance != session.controller_instance:
                log.warning("controller restarted; re-joining")
                return
            if heartbeat.sent_at_ms < session.accepted_at_ms:
                continue  # queued before this join (e.g. while the worker was stopped)
            # Two heartbeats in a row, so a join still on its way does not count.
            known = session.worker_id in heartbeat.worker_ids
            unknown_in_a_row = 0 if known else unknown_in_a_row + 1
            if unknown_in_a_row >= 2:
                log.warning("the controller no longer counts on this worker; re-joining")
                return

    def _publish_telemetry(self) -> None:
        """Report every interval; and give back the jobs that waited too long for a slot,
        so none is held unstarted for longer than the controller's dead-worker timeout."""
        sampler, own_sampler = LoadSampler(), ProcessSampler()
        self._joined.wait()
        while True:
            session = self._session
            cpu, memory, gpu = sampler.sample()
            own_cpu, own_rss = own_sampler.sample()
            running, prefetched = self.runner.held_jobs()
            self.link.publish(
                Telemetry(
                    worker_id=session.worker_id,
                    cpu_percent=cpu,
                    memory_percent=memory,
                    gpu=gpu,
                    running_job_ids=running,
                    worker_key=session.rpc_key,
                    process_cpu_percent=own_cpu,
                    process_rss_bytes=own_rss,
                    prefetched_job_ids=prefetched,
                )
            )
            interval_s = session.telemetry_interval_ms / 1000
            # Checked once an interval, so given back within the timeout.
            self.runner.give_back_stale((defaults.DEAD_AFTER_INTERVALS - 1) * interval_s)
            if self._jobs_finished.wait(interval_s):
                return  # reports go on while running jobs finish, so none is taken back

    def _shut_down(self) -> None:
        log.info("stopping: waiting for running jobs")
        self.rpc_server.close()
        self.runner.shutdown(wait=True)
        self._delivery.wait_delivered(timeout_s=defaults.WORKER_REQUEST_TIMEOUT_MS / 1000)
        self._jobs_finished.set()
        for thread in self._threads[:2]:  # stop using the sockets before closing them
            thread.join(timeout=2 * defaults.HEARTBEAT_WAIT_SLICE_MS / 1000)
        self.link.close()
