"""The worker's rpyc service: one exposed method, usable only with the controller's rpc key."""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence

import rpyc
from rpyc.core.stream import SocketStream
from rpyc.utils.authenticators import AuthenticationError
from rpyc.utils.server import ThreadedServer

from protocol import DecodeError, JobAssignment, JobBatch, SubmitAnswer, decode
from protocol.rpc import CONNECT_PROOF_BYTES, SAFE_RPYC_CONFIG, BoundedChannel, connect_proof
from worker.config import WorkerConfig

log = logging.getLogger(__name__)
rpyc_log = logging.getLogger("worker.rpc")
rpyc_log.setLevel(logging.WARNING)  # rpyc logs every connection at INFO


class JobService(rpyc.Service):
    """What the scheduler may call on a worker, and nothing else."""

    def __init__(
        self,
        rpc_key: Callable[[], str | None],
        submit: Callable[[Sequence[JobAssignment]], tuple[SubmitAnswer, ...]],
    ):
        super().__init__()
        self.rpc_key = rpc_key  # the current key, None while not joined or stopping
        self._submit = submit
        self._key_changed = threading.Condition()

    def key_changed(self) -> None:
        """Tell connections waiting for a new key (the worker just joined) to look again."""
        with self._key_changed:
            self._key_changed.notify_all()

    def proves_key(self, proof: bytes, wait_s: float) -> bool:
        """Whether `proof` is the current key's, waiting up to `wait_s` for a new key.

        The scheduler may connect with the key of a join whose answer the worker has not
        read yet; such a proof becomes good within moments, a wrong one never does.
        """

        def proven() -> bool:
            key = self.rpc_key()
            return key is not None and hmac.compare_digest(proof, connect_proof(key))

        with self._key_changed:
            return self._key_changed.wait_for(proven, timeout=wait_s)

    def exposed_submit_jobs(self, rpc_key, batch) -> tuple[str, ...]:
        """Take jobs if `rpc_key` is this worker's current key, as far as it has room.

        Answers a `SubmitAnswer` value per job, or one for the whole call (a wrong key, a
        malformed batch, not joined), as a tuple of plain str (rpyc sends no other str type,
        and no list, by value).
        """
        return tuple(answer.value for answer in self._answer(rpc_key, batch))

    def _answer(self, rpc_key, batch) -> tuple[SubmitAnswer, ...]:
        if type(rpc_key) is not str or type(batch) is not bytes:
            return (SubmitAnswer.REFUSED,)
        expected = self.rpc_key()
        if expected is None:
            return (SubmitAnswer.NOT_READY,)
        if not hmac.compare_digest(rpc_key.encode(), expected.encode()):
            log.warning("refused a job call with a wrong rpc key")
            return (SubmitAnswer.REFUSED,)
        try:
            jobs = decode(batch, JobBatch).jobs
        except DecodeError as e:
            log.warning("refused a malformed batch of jobs: %s", e)
            return (SubmitAnswer.REFUSED,)
        if not jobs:
            return (SubmitAnswer.REFUSED,)
        return self._submit(jobs)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class GuardedServer(ThreadedServer):
    """rpyc's ThreadedServer with bounds that hold before any key is checked.

    At most `max_connections` connections at once (more are closed at once); each must
    send the key's proof (`protocol.rpc.connect_proof`) within `connect_timeout_s` before
    rpyc reads any frame of it; and every frame goes over a BoundedChannel.
    """

    def __init__(
        self,
        service: JobService,
        *,
        max_frame_bytes: int,
        max_connections: int,
        connect_timeout_s: float,
        **kwargs,
    ) -> None:
        super().__init__(service, authenticator=self._authenticate, **kwargs)
        self.max_frame_bytes = max_frame_bytes
        self._connect_timeout_s = connect_timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)

    def _accept_method(self, sock: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("refused an rpc connection: %d already open", len(self.clients))
            sock.close()
            self.clients.discard(sock)
            return
        threading.Thread(target=self._serve_then_free_slot, args=(sock,), daemon=True).start()

    def _serve_then_free_slot(self, sock: socket.socket) -> None:
        try:
            self._authenticate_and_serve_client(sock)
        finally:
            self._slots.release()

    def _authenticate(self, sock: socket.socket) -> tuple[socket.socket, None]:
        """Read the key's proof, with a deadline; raise AuthenticationError without it."""
        deadline = time.monotonic() + self._connect_timeout_s
        sock.settimeout(self._connect_timeout_s)
        try:
            proof = _read_exactly(sock, CONNECT_PROOF_BYTES)
        except OSError as e:  # the deadline passed, or the peer reset
            raise AuthenticationError(f"no key proof: {e}") from e
        if not self.service.proves_key(proof, max(0.0, deadline - time.monotonic())):
            log.warning("refused an rpc connection without the rpc key")
            raise AuthenticationError("wrong or missing key proof")
        sock.settimeout(None)
        return sock, None

    def _serve_client(self, sock: socket.socket, credentials: None) -> None:
        """rpyc's own, with the bounded channel."""
        config = dict(
            self.protocol_config,
            credentials=credentials,
            endpoints=(sock.getsockname(), sock.getpeername()),
            logger=self.logger,
        )
        channel = BoundedChannel(SocketStream(sock), self.max_frame_bytes)
        self._handle_connection(self.service._connect(channel, config))


def start_rpc_server(service: JobService, config: WorkerConfig) -> ThreadedServer:
    """Bind the service (rpc port 0: any free port) and serve it from a background thread."""
    server = GuardedServer(
        service,
        hostname=config.listen_host,
        port=config.rpc_port,
        protocol_config=SAFE_RPYC_CONFIG,
        auto_register=False,
        logger=rpyc_log,
        max_frame_bytes=config.rpc_max_frame_bytes,
        max_connections=config.rpc_max_connections,
        connect_timeout_s=config.rpc_connect_timeout_s,
    )
    threading.Thread(target=server.start, name="rpc-server", daemon=True).start()
    return server
