"""A DPIP site on simulated hosts: PostgreSQL, the controller, API hosts behind nginx and
workers, each in a network namespace of its own on one LAN (tests/netns.py), the client on
the switch. Used by the several-API-hosts test and bench/api_hosts.py.

The API hosts have data dirs of their own and share the JWT secret (DPIP_JWT_SECRET) and
the images dir (the filesystem is shared: namespaces separate only the network); clients
and workers reach the API through nginx (deploy/nginx/dpip.conf).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import Cluster
from tests.netns import Network
from tests.nginx_server import NginxServer
from tests.postgres_server import PostgresServer

POSTGRES_PORT = 5432  # each host has a network of its own: every port is free there
BALANCER_PORT = 80


def site_addresses(subnet: str, api_hosts: int, workers: int) -> dict[str, str]:
    """Each host's name and address: database, controller, balancer, api-N, worker-N."""
    addresses = {
        "database": f"{subnet}.2",
        "controller": f"{subnet}.3",
        "balancer": f"{subnet}.4",
    }
    addresses |= {f"api-{n}": f"{subnet}.{10 + n}" for n in range(1, api_hosts + 1)}
    addresses |= {f"worker-{n}": f"{subnet}.{100 + n}" for n in range(1, workers + 1)}
    return addresses


@dataclass
class Site:
    network: Network
    cluster: Cluster  # its url is nginx's
    postgres: PostgresServer
    apis: dict[str, str] = field(default_factory=dict)  # API host → its own URL

    def start_api(self, name: str) -> str:
        host = self.network.hosts[name]
        return self.cluster.start_api(name, host=host.address, netns=host.namespace)


def start_site(
    network: Network,
    root: Path,
    running: contextlib.ExitStack,
    env: dict[str, str] | None = None,
    worker_concurrency: int = 1,
) -> Site:
    """Start every part on its host (call it from inside the switch); `running` stops them
    all. `env` goes to every part, after the site's own settings."""
    database = network.hosts["database"]
    postgres = running.enter_context(
        PostgresServer(POSTGRES_PORT, host=database.address, netns=database.namespace)
    )
    balancer = network.hosts["balancer"]
    site_env = {
        "DPIP_DATABASE_URL": postgres.create_database("dpip"),
        "DPIP_JWT_SECRET": secrets.token_urlsafe(48),  # every API host and the controller
        "DPIP_PROXY_HOPS": "1",  # nginx appends the client's address to X-Forwarded-For
        **(env or {}),
    }
    controller = network.hosts["controller"]
    cluster = Cluster(
        root,
        site_env,
        host=controller.address,
        netns=controller.namespace,
        url=f"http://{balancer.address}:{BALANCER_PORT}",
    )
    running.callback(cluster.stop_all)
    cluster.start_controller()
    site = Site(network, cluster, postgres)
    api_hosts = [name for name in network.hosts if name.startswith("api-")]
    site.apis = {name: site.start_api(name) for name in api_hosts}
    api_servers = [f"{network.hosts[name].address}:{cluster.api_port}" for name in api_hosts]
    running.enter_context(
        NginxServer(balancer.address, BALANCER_PORT, api_servers, balancer.namespace)
    )
    workers = [name for name in network.hosts if name.startswith("worker-")]
    for name in workers:
        host = network.hosts[name]
        cluster.start_worker(
            name,
            concurrency=worker_concurrency,
            netns=host.namespace,
            advertise_host=host.address,
        )
    cluster.wait_workers_alive(set(workers))
    return site
