"""A fleet of workers on simulated hosts: the control plane (controller and API, SQLite and
the local image dir) on one host, the workers spread over several others, each worker's
rpyc port bound on its host's address (tests/netns.py). The test process talks from the
switch. Used by the fifty-worker test and bench/worker_hosts.py.

Fifty workers on 2 cores: each start costs about a second of CPU (imports, its pool
process), so the workers start in waves, each once the one before is alive; `Cluster.stop_all`
stops them together.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.conftest import ADMIN_PASSWORD, Client, Cluster
from tests.netns import Network

CONTROL = "control"  # the host of the controller and the API
# The default interval, not the tests' usual 250 ms: fifty workers reporting that often use
# most of 2 cores while idle (each sample reads every process on the machine), and those
# starved of CPU for 3 intervals were declared dead by the dozen.
TELEMETRY_INTERVAL_MS = 1000


def fleet_addresses(subnet: str, worker_hosts: int) -> dict[str, str]:
    """Each host's name and address: the control plane, then host-1, host-2, ..."""
    addresses = {CONTROL: f"{subnet}.2"}
    addresses |= {f"host-{n}": f"{subnet}.{10 + n}" for n in range(1, worker_hosts + 1)}
    return addresses


@dataclass
class Fleet:
    network: Network
    cluster: Cluster
    workers: dict[str, list[str]]  # worker host → the names of its workers

    def names(self) -> set[str]:
        return {name for names in self.workers.values() for name in names}

    def admin(self) -> Client:
        return self.cluster.login("admin", ADMIN_PASSWORD)


def start_fleet(
    network: Network,
    root: Path,
    running: contextlib.ExitStack,
    workers_per_host: int,
    env: dict[str, str] | None = None,
    telemetry_interval_ms: int = TELEMETRY_INTERVAL_MS,
    api_processes: int | None = None,
) -> Fleet:
    """Start the control plane on its host (call it from inside the switch); `running`
    stops everything it started. No worker starts yet: see `start_in_waves`.
    `api_processes`: the API's server processes (default: `dpip api`'s)."""
    control = network.hosts[CONTROL]
    cluster = Cluster(
        root,
        env,
        host=control.address,
        netns=control.namespace,
        telemetry_interval_ms=telemetry_interval_ms,
    )
    running.callback(cluster.stop_all)
    cluster.start_controller()
    cluster.start_api(processes=api_processes)
    workers = {
        host: [f"{host}-w{n:02d}" for n in range(1, workers_per_host + 1)]
        for host in network.hosts
        if host != CONTROL
    }
    return Fleet(network, cluster, workers)


def start_in_waves(fleet: Fleet, wave: int, timeout_s: float = 60) -> list[float]:
    """Start every worker of the fleet, `wave` at a time, each wave once the one before is
    alive; answer how long each wave took to be alive, in seconds."""
    pending = [name for names in fleet.workers.values() for name in names]
    host_of = {name: host for host, names in fleet.workers.items() for name in names}
    took = []
    for first in range(0, len(pending), wave):
        names = pending[first : first + wave]
        started = time.monotonic()
        for name in names:
            host = fleet.network.hosts[host_of[name]]
            fleet.cluster.start_worker(name, netns=host.namespace, advertise_host=host.address)
        fleet.cluster.wait_workers_alive(set(names), timeout_s)
        took.append(time.monotonic() - started)
    return took


def tiny_pngs(count: int, side: int = 16) -> list[bytes]:
    """`count` distinct small PNGs (a flat colour each), cheap to make and to filter."""
    images = []
    for n in range(count):
        out = io.BytesIO()
        colour = (n % 256, (n // 256) % 256, 255 - n % 256)
        Image.new("RGB", (side, side), colour).save(out, format="PNG")
        images.append(out.getvalue())
    return images
