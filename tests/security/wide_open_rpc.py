"""The worker's rpyc service served the way it must never be: rpyc's attribute access or
classic mode switched on.

Run as a process of its own (`python -m tests.security.wide_open_rpc`), so that what reaches
into it reaches across a real connection (in one process, rpyc hands some objects over
as they are). Prints its ports as one JSON line once each listens, then serves until its
stdin closes.
"""

from __future__ import annotations

import functools
import json
import sys
import threading

import rpyc
from rpyc.utils.server import ThreadedServer

from protocol.rpc import SAFE_RPYC_CONFIG
from tests.conftest import wait_until
from worker.rpc_service import JobService

RPC_KEY = "the-wide-open-rpc-key"
MISCONFIGURATIONS = {
    "allow_public_attrs": {"allow_public_attrs": True},
    "allow_all_attrs": {"allow_all_attrs": True},
}
READY_TIMEOUT_S = 10


def _serve(service: rpyc.Service, config: dict) -> int:
    """Serve from a thread; return the port once it listens."""
    server = ThreadedServer(
        service, hostname="127.0.0.1", port=0, protocol_config=config, auto_register=False
    )
    threading.Thread(target=server.start, daemon=True).start()
    wait_until(lambda: server.active, READY_TIMEOUT_S, "the server to listen")  # binds, listens
    return server.port


def main() -> None:
    service = JobService(functools.partial(str, RPC_KEY), bool)
    ports = {
        name: _serve(service, {**SAFE_RPYC_CONFIG, **change})
        for name, change in MISCONFIGURATIONS.items()
    }
    ports["classic"] = _serve(rpyc.SlaveService, {})
    print(json.dumps(ports), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
