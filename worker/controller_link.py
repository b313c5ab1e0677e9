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


class ControllerLink:
    """Request/reply, telemetry and heartbeat channels to one controller."""

    def __init__(self, host: str, port: int, timeout_ms: int) -> None:
        self._host = host
        self._peer = f"the controller at {host}:{port}"
        self._timeout_ms = timeout_ms
        self._req_lock = threading.Lock()
        self._max_message_bytes = max_message_bytes()
        self._req = pynng.Req0(
            recv_timeout=timeout_ms,
            send_timeout=timeout_ms,
            resend_time=timeout_ms,
            recv_max_size=self._max_message_bytes,
        )
        self._req.dial(f"tcp://{host}:{port}", block=False)
        self._channel_lock = threading.Lock()
        self._ports: tuple[int, int] | None = None
        self._pub: pynng.Pub0 | None = None
        self._sub: pynng.Sub0 | None = None

    def _request(self, message: Message, timeout_ms: int | None = None) -> Message:
        with self._req_lock:
            try:
                self._req.recv_timeout = timeout_ms or self._timeout_ms
                self._req.send(message.encode())
                return decode(self._req.recv())
            except (pynng.NNGException, DecodeError) as e:
                raise ControllerUnavailable(f"no answer from the controller: {e}") from e

    def join(self, request: JoinRequest, join_token: str) -> JoinAccepted:
        """Join through the handshake (`protocol/join_proof.py`); `request` without its proof.

        Nothing but a nonce goes out before the peer proved it knows the join token, and
        only an answer carrying the controller's proof is trusted.
        """
        worker_nonce = new_nonce()
        challenge = self._request(JoinHello(worker_nonce), defaults.JOIN_TIMEOUT_MS)
        if not isinstance(challenge, JoinChallenge) or not is_nonce(challenge.controller_nonce):
            raise ControllerNotProven(f"{self._peer} answered a join hello with {challenge.kind}")
        proofs = JoinProofs(join_token, worker_nonce, challenge.controller_nonce)
        if not proves(proofs.controller(), challenge.controller_proof):
            raise ControllerNotProven(
                f"{self._peer} did not prove it knows the join token: the join token is wrong"
                " (see 'dpip join-token'), or another process holds the controller's port"
            )
        proven = dataclasses.replace(
            request, controller_nonce=challenge.controller_nonce, proof=proofs.worker()
        )
        reply = self._request(proven, defaults.JOIN_TIMEOUT_MS)
        if not isinstance(reply, JoinAccepted | JoinRefused) or not proves(
            proofs.reply(reply), reply.proof
        ):
            # The real controller's refusals of a proven worker carry its proof too, so this
            # is an expired challenge, or someone else answering: try again.
            raise ControllerUnavailable(f"join not completed: {_describe(reply)}")
        if isinstance(reply, JoinRefused):
            raise JoinRefusedError(reply.reason)
        return reply

    def report(self, results: JobResults) -> None:
        reply = self._request(results)
        if not isinstance(reply, Ack) or not reply.ok:
            raise ControllerUnavailable(f"results not taken: {reply}")

    def open_channels(self, telemetry_port: int, broadcast_port: int) -> None:
        """Dial the telemetry and broadcast ports the controller announced (again if changed)."""
        if self._ports == (telemetry_port, broadcast_port):
            return
        with self._channel_lock:
            self._close_channels()
            self._pub = pynng.Pub0(
                send_timeout=self._timeout_ms, recv_max_size=self._max_message_bytes
            )
            self._pub.dial(f"tcp://{self._host}:{telemetry_port}", block=False)
            self._sub = pynng.Sub0(recv_max_size=self._max_message_bytes)
            self._sub.subscribe(b"")
            self._sub.dial(f"tcp://{self._host}:{broadcast_port}", block=False)
            self._ports = (telemetry_port, broadcast_port)

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
        self._ports = None

    def close(self) -> None:
        with self._channel_lock:
            self._close_channels()
        self._req.close()
