"""One API host against two behind nginx (issue 16's figures), on simulated hosts.

The site of the several-API-hosts test (tests/api_site.py): PostgreSQL, the controller, the
API hosts, nginx and two workers of one slot each, every part in a network namespace of its
own on one LAN; stress_test.py runs on the switch against nginx. Every part shares the
same cores, so compare each part's CPU per image, not images/s. Rounds alternate one and
two API hosts, each on a fresh site. Needs root, iproute2, PostgreSQL and nginx.

    .venv/bin/python bench/api_hosts.py [--images 3000] [--size 64x64] [--format png]
        [--batch 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measured_run import measured_run, print_run, stress_args  # noqa: E402
from tests.api_site import Site, site_addresses, start_site  # noqa: E402
from tests.netns import in_namespace, inside, simulated_network  # noqa: E402

SUBNET = "10.213.11"
WORKERS = 2


def parts(site: Site) -> dict[str, list[psutil.Process]]:
    """Each part's processes: its own and their children (pool processes, gunicorn's)."""
    found: dict[str, list[psutil.Process]] = {}
    for name, popen in site.cluster.processes.items():
        part = "api" if name.startswith("api") else "workers" if "worker" in name else name
        process = psutil.Process(popen.pid)
        found.setdefault(part, []).extend([process, *process.children(recursive=True)])
    postmaster = int((site.postgres.data_dir / "postmaster.pid").read_text().split()[0])
    server = psutil.Process(postmaster)
    found["postgres"] = [server, *server.children(recursive=True)]
    found["nginx"] = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "nginx"]
    return found


def run_once(api_hosts: int, args: argparse.Namespace, keep: Path) -> None:
    addresses = site_addresses(SUBNET, api_hosts, WORKERS)
    root = Path(tempfile.mkdtemp(prefix=f"hosts{api_hosts}-", dir=keep))
    with (
        simulated_network(f"b{os.getpid()}", SUBNET, addresses) as network,
        contextlib.ExitStack() as running,
        inside(network.switch),
    ):
        site = start_site(network, root, running, {"DPIP_LOG_LEVEL": "WARNING"})
        report, per_image = measured_run(
            site.cluster.url,
            args,
            root,
            parts(site),
            functools.partial(in_namespace, network.switch),
        )
    print_run(f"api_hosts={api_hosts}", args, report, per_image)


def main() -> None:
    args = stress_args(__doc__.splitlines()[0], images=3000)
    # Files are kept until the end: on a host whose file system is slow to create files
    # after mass deletes (bench/README.md), a deleted site would slow the next round.
    with tempfile.TemporaryDirectory(prefix="dpip-api-hosts-") as keep:
        for _ in range(args.rounds):
            for api_hosts in (1, 2):
                run_once(api_hosts, args, Path(keep))


if __name__ == "__main__":
    main()
