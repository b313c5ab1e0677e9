"""The worker's rpyc service: one exposed method, usable only with the controller's rpc key."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable

import rpyc
from rpyc.utils.server import ThreadedServer

from protocol import DecodeError, JobAssignment, decode
from protocol.rpc import SAFE_RPYC_CONFIG

log = logging.getLogger(__name__)
rpyc_log = logging.getLogger("worker.rpc")
rpyc_log.setLevel(logging.WARNING)  # rpyc logs every connection at INFO


class JobService(rpyc.Service):
    """What the scheduler may call on a worker, and nothing else."""

    def __init__(self, rpc_key: Callable[[], str | None], submit: Callable[[JobAssignment], bool]):
        super().__init__()
        self._rpc_key = rpc_key
        self._submit = submit

    def exposed_submit_job(self, rpc_key, assignment) -> bool:
        """Start a job if `rpc_key` is this worker's current key and a slot is free."""
        expected = self._rpc_key()
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


def start_rpc_server(service: JobService, host: str, port: int) -> ThreadedServer:
    """Bind the service (port 0: any free port) and serve it from a background thread."""
    server = ThreadedServer(
        service,
        hostname=host,
        port=port,
        protocol_config=SAFE_RPYC_CONFIG,
        auto_register=False,
        logger=rpyc_log,
    )
    threading.Thread(target=server.start, name="rpc-server", daemon=True).start()
    return server
