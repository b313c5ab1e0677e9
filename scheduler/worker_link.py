"""The scheduler's rpyc connection to one worker's JobService; rpyc errors stop here."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import rpyc
from rpyc.core.vinegar import GenericException
from rpyc.utils.factory import connect_channel

from foundation import defaults
from foundation.errors import DPIPError
from protocol import JobAssignment
from protocol.rpc import SAFE_RPYC_CONFIG, BoundedChannel, connect_proof

log = logging.getLogger(__name__)


class WorkerUnreachable(DPIPError):
    """Raised when a worker cannot be reached over rpyc or refuses a job."""


class WorkerLink:
    """A lazily opened rpyc connection to a worker, authenticated per call with its rpc key.

    Calls go out from the link's own thread, so a hung worker delays only its own jobs,
    never the scheduler; a job the worker did not take is handed to `on_refused`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        rpc_key: str,
        timeout_s: float,
        on_refused: Callable[[JobAssignment, str], None],
        max_frame_bytes: int = defaults.RPC_MAX_FRAME_BYTES,
    ) -> None:
        self._host = host
        self._max_frame_bytes = max_frame_bytes
        self._port = port
        self._rpc_key = rpc_key
        self._timeout_s = timeout_s
        self._on_refused = on_refused
        self._conn: rpyc.Connection | None = None
        self._outbox: queue.SimpleQueue[JobAssignment | None] = queue.SimpleQueue()
        threading.Thread(target=self._send_loop, name=f"rpc-{host}:{port}", daemon=True).start()

    def send(self, assignment: JobAssignment) -> None:
        """Queue a job for the worker; returns at once."""
        self._outbox.put(assignment)

    def close(self) -> None:
        """Stop once the jobs already queued here are sent (or refused)."""
        self._outbox.put(None)

    def _send_loop(self) -> None:
        while (assignment := self._outbox.get()) is not None:
            try:
                self._submit(assignment)
            except WorkerUnreachable as e:
                self._on_refused(assignment, str(e))
        self._disconnect()

    def _submit(self, assignment: JobAssignment) -> None:
        """Hand a job to the worker; raise WorkerUnreachable if it did not take it."""
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
            accepted = self._conn.root.submit_job(self._rpc_key, assignment.encode())
        except (EOFError, OSError, TimeoutError, AttributeError, GenericException) as e:
            self._disconnect()
            raise WorkerUnreachable(f"rpc to {self._host}:{self._port} failed: {e!r}") from e
        if not accepted:
            raise WorkerUnreachable(f"worker at {self._host}:{self._port} refused the job")

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except (EOFError, OSError) as e:
                log.debug("closing rpc connection: %s", e)
            self._conn = None
