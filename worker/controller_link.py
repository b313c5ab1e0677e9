"""The worker's nng sockets to the controller; pynng errors stop here.

req → controller port: join (a handshake) and batches of job results (answered);
pub → telemetry port: load reports; sub ← broadcast port: controller heartbeats.
Every socket refuses messages over the size limit (nng closes the connection).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

import pynng

from foundation import defaults
from foundation.errors import DPIPError
from protocol import (
    Ack,
    ControllerHeartbeat,
    DecodeError,
    JobResults,
    JoinAccepted,
    JoinChallenge,
    JoinHello,
    JoinProofs,
    JoinRefused,
    JoinRequest,
    Message,
    Telemetry,
    decode,
    excerpt,
    is_nonce,
    new_nonce,
    proves,
)

log = logging.getLogger(__name__)


class ControllerUnavailable(DPIPError):
    """Raised when the controller does not answer in time."""


class ControllerNotProven(ControllerUnavailable):
    """Raised when the peer on the controller port does not prove it knows the join token."""


class JoinRefusedError(DPIPError):
    """Raised when the controller refuses this worker (wrong join token, bad fields)."""

    exit_code = 2


def max_message_bytes() -> int:
    """The largest nng message this worker reads (DPIP_NNG_MAX_MESSAGE_BYTES, as the controller)."""
    return int(os.environ.get("DPIP_NNG_MAX_MESSAGE_BYTES", defaults.NNG_MAX_MESSAGE_BYTES))


def _describe(reply: Message) -> str:
    if isinstance(reply, JoinRefused | Ack):
        detail = reply.reason if isinstance(reply, JoinRefused) else reply.detail
        return f"{reply.kind} ({excerpt(detail)})"
    return reply.kind


class _Controller:
    """The request/reply channel to one controller address."""

    def __init__(self, host: str, port: int, timeout_ms: int, max_message_bytes: int) -> None:
        self.host = host
        self.peer = f"the controller at {host}:{port}"
        self._timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._req = pynng.Req0(
            recv_timeout=timeout_ms,
            send_timeout=timeout_ms,
            resend_time=timeout_ms,
            recv_max_size=max_message_bytes,
        )
        self._req.dial(f"tcp://{host}:{port}", block=False)  # and again whenever it drops

    @property
    def connected(self) -> bool:
        return bool(self._req.pipes)

    def on_connect(self, callback: Callable[[], None]) -> None:
        self._req.add_post_pipe_connect_cb(lambda _pipe: callback())

    def request(self, message: Message, timeout_ms: int | None = None) -> Message:
        with self._lock:
            try:
                self._req.recv_timeout = timeout_ms or self._timeout_ms
                self._req.send(message.encode())
                return decode(self._req.recv())
            except (pynng.NNGException, DecodeError) as e:
                raise ControllerUnavailable(f"no answer from {self.peer}: {e}") from e

    def join(self, request: JoinRequest, join_token: str) -> JoinAccepted:
        """Join through the handshake (`protocol/join_proof.py`); `request` without its proof.

        Nothing but a nonce goes out before the peer proved it knows the join token, and
        only an answer carrying the controller's proof is trusted.
        """
        worker_nonce = new_nonce()
        challenge = self.request(JoinHello(worker_nonce), defaults.JOIN_TIMEOUT_MS)
        if not isinstance(challenge, JoinChallenge) or not is_nonce(challenge.controller_nonce):
            raise ControllerNotProven(f"{self.peer} answered a join hello with {challenge.kind}")
        proofs = JoinProofs(join_token, worker_nonce, challenge.controller_nonce)
        if not proves(proofs.controller(), challenge.controller_proof):
            raise ControllerNotProven(
                f"{self.peer} did not prove it knows the join token: the join token is wrong"
                " (see 'dpip join-token'), or another process holds the controller's port"
            )
        proven = dataclasses.replace(
            request, controller_nonce=challenge.controller_nonce, proof=proofs.worker()
        )
        reply = self.request(proven, defaults.JOIN_TIMEOUT_MS)
        if not isinstance(reply, JoinAccepted | JoinRefused) or not proves(
            proofs.reply(reply), reply.proof
        ):
            # The real controller's refusals of a proven worker carry its proof too, so this
            # is an expired challenge, or someone else answering: try again.
            raise ControllerUnavailable(f"join not completed by {self.peer}: {_describe(reply)}")
        if isinstance(reply, JoinRefused):
            raise JoinRefusedError(reply.reason)
        return reply

    def close(self) -> None:
        self._req.close()


class ControllerLink:
    """Request/reply, telemetry and heartbeat channels to the active controller: the one
    that completes a join among `addresses` (an active controller and its standbys)."""

    def __init__(self, addresses: Sequence[tuple[str, int]], timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._max_message_bytes = max_message_bytes()
        self._controllers = [
            _Controller(host, port, timeout_ms, self._max_message_bytes) for host, port in addresses
        ]
        self._current = self._controllers[0]  # the one joined last (or the first to try)
        self._connected = threading.Event()  # set as any of them connects
        for controller in self._controllers:
            controller.on_connect(self._connected.set)
        self._channel_lock = threading.Lock()
        self._pub: pynng.Pub0 | None = None
        self._sub: pynng.Sub0 | None = None

    def join(self, request: JoinRequest, join_token: str) -> JoinAccepted:
        """Join the first controller that completes the handshake (see `_join_order`).

        Raises ControllerNotProven if none joined and one did not prove it knows the join
        token (a wrong token, most likely), else ControllerUnavailable.
        """
        failures: list[ControllerUnavailable] = []
        order = self._join_order()
        for controller in order:
            try:
                accepted = controller.join(request, join_token)
            except ControllerUnavailable as e:
                failures.append(e)
                if len(failures) < len(order):
                    log.info("%s; trying the next controller address", e)
                continue
            self._current = controller
            return accepted
        if len(failures) == 1:
            raise failures[0]
        unproven = any(isinstance(e, ControllerNotProven) for e in failures)
        raise (ControllerNotProven if unproven else ControllerUnavailable)(
            "; ".join(str(e) for e in failures)
        )

    def _join_order(self) -> list[_Controller]:
        """One address: just it. Several: those connected now (a standby binds no port),
        from the one joined last on; then the rest, in case one connects meanwhile. If none
        is connected yet, wait up to a join's timeout for one to be."""
        if len(self._controllers) == 1:
            return self._controllers
        start = self._controllers.index(self._current)
        in_turn = self._controllers[start:] + self._controllers[:start]
        deadline = time.monotonic() + defaults.JOIN_TIMEOUT_MS / 1000
        while True:
            self._connected.clear()  # before looking, so a connection meanwhile is not missed
            if any(c.connected for c in in_turn) or not self._connected.wait(
                max(0.0, deadline - time.monotonic())
            ):
                break
        return sorted(in_turn, key=lambda c: not c.connected)  # stable: in turn within each

    def report(self, results: JobResults) -> None:
        reply = self._current.request(results)
        if not isinstance(reply, Ack) or not reply.ok:
            raise ControllerUnavailable(f"results not taken: {reply}")

    def open_channels(self, telemetry_port: int, broadcast_port: int) -> None:
        """Dial the telemetry and broadcast ports the controller joined last announced, on
        its host, afresh at each join: a connection that outlived a cut link can sit in
        TCP's retransmission back-off for seconds after the link is back, and a worker
        whose reports and heartbeats wait on it would be declared dead (and re-join) again."""
        host = self._current.host
        with self._channel_lock:
            self._close_channels()
            self._pub = pynng.Pub0(
                send_timeout=self._timeout_ms, recv_max_size=self._max_message_bytes
            )
            self._pub.dial(f"tcp://{host}:{telemetry_port}", block=False)
            self._sub = pynng.Sub0(recv_max_size=self._max_message_bytes)
            self._sub.subscribe(b"")
            self._sub.dial(f"tcp://{host}:{broadcast_port}", block=False)

    def publish(self, telemetry: Telemetry) -> None:
        with self._channel_lock:
            if self._pub is None:
                return
            try:
                self._pub.send(telemetry.encode())
            except pynng.NNGException as e:
                log.debug("telemetry not sent: %s", e)

    def next_heartbeat(self, timeout_ms: int) -> ControllerHeartbeat | None:
        """Wait for the controller's next heartbeat; None if it stays silent that long."""
        sub = self._sub
        if sub is None:
            return None
        sub.recv_timeout = timeout_ms
        try:
            return decode(sub.recv(), ControllerHeartbeat)
        except (pynng.Timeout, pynng.Closed):
            return None
        except DecodeError as e:
            log.warning("bad broadcast from the controller: %s", e)
            return None

    def _close_channels(self) -> None:
        for socket in (self._pub, self._sub):
            if socket is not None:
                socket.close()
        self._pub = self._sub = None

    def close(self) -> None:
        with self._channel_lock:
            self._close_channels()
        for controller in self._controllers:
            controller.close()
