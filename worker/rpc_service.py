"""The worker's rpyc service: one exposed method, usable only with the controller's rpc key."""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from collections.abc import Callable

import rpyc
from rpyc.core.stream import SocketStream
from rpyc.utils.authenticators import AuthenticationError
from rpyc.utils.server import ThreadedServer

from protocol import DecodeError, JobAssignment, decode
from protocol.rpc import CONNECT_PROOF_BYTES, SAFE_RPYC_CONFIG, BoundedChannel, connect_proof
from worker.config import WorkerConfig

log = logging.getLogger(__name__)
rpyc_log = logging.getLogger("worker.rpc")
rpyc_log.setLevel(logging.WARNING)  # rpyc logs every connection at INFO


class JobService(rpyc.Service):
    """What the scheduler may call on a worker, and nothing else."""

    def __init__(self, rpc_key: Callable[[], str | None], submit: Callable[[JobAssignment], bool]):
        super().__init__()
        self.rpc_key = rpc_key  # the current key, None while not joined or stopping
        self._submit = submit

    def exposed_submit_job(self, rpc_key, assignment) -> bool:
        """Start a job if `rpc_key` is this worker's current key and a slot is free."""
        expected = self.rpc_key()
        if type(rpc_key) is not str or type(assignment) is not bytes or expected is None:
            return False
        if not hmac.compare_digest(rpc_key.encode(), expected.encode()):
            log.warning("refused a job call with a wrong rpc key")
            return False
        try:
            job = decode(assignment, JobAssignment)
        except DecodeError as e:
            log.warning("refused a malformed job: %s", e)
            return False
        return self._submit(job)


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
        self._rpc_key = service.rpc_key
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
        sock.settimeout(self._connect_timeout_s)
        try:
            proof = _read_exactly(sock, CONNECT_PROOF_BYTES)
        except OSError as e:  # the deadline passed, or the peer reset
            raise AuthenticationError(f"no key proof: {e}") from e
        key = self._rpc_key()
        if key is None or not hmac.compare_digest(proof, connect_proof(key)):
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
