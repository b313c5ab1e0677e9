"""The worker's configuration, filled from CLI flags and DPIP_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from foundation import defaults


def parse_controllers(text: str) -> tuple[tuple[str, int], ...]:
    """The controllers' addresses in `HOST:PORT[,HOST:PORT...]` (the active one and its
    standbys, in the order to try them); ValueError if one is not HOST:PORT."""
    addresses = []
    for address in text.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"expected HOST:PORT[,HOST:PORT...], e.g. 127.0.0.1:40899, not {text!r}"
            )
        addresses.append((host, int(port)))
    return tuple(addresses)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker process needs to know."""

    controller_host: str  # the first controller to try
    controller_port: int
    worker_name: str
    join_token: str
    tags: tuple[str, ...] = ()
    concurrency: int = 1
    prefetch: int = defaults.WORKER_PREFETCH  # jobs taken beyond each slot, waiting for it
    advertise_host: str = "127.0.0.1"  # where the scheduler reaches this worker's rpyc port
    listen_host: str = "127.0.0.1"
    rpc_port: int = 0  # 0: any free port
    request_timeout_ms: int = defaults.WORKER_REQUEST_TIMEOUT_MS
    job_time_limit_s: float = defaults.JOB_TIME_LIMIT_S
    rpc_max_frame_bytes: int = defaults.RPC_MAX_FRAME_BYTES
    rpc_max_connections: int = defaults.RPC_MAX_CONNECTIONS
    rpc_connect_timeout_s: float = defaults.RPC_CONNECT_TIMEOUT_S
    other_controllers: tuple[tuple[str, int], ...] = ()  # (host, port): standbys, tried in turn

    @property
    def controllers(self) -> tuple[tuple[str, int], ...]:
        """Every controller address, the first one first."""
        return ((self.controller_host, self.controller_port), *self.other_controllers)
