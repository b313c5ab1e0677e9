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
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api_site import Site, site_addresses, start_site  # noqa: E402
from tests.conftest import ADMIN_PASSWORD  # noqa: E402
from tests.netns import in_namespace, inside, simulated_network  # noqa: E402

SUBNET = "10.213.11"
WORKERS = 2


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


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
    ):
        with inside(network.switch):
            site = start_site(network, root, running, {"DPIP_LOG_LEVEL": "WARNING"})
            processes = parts(site)
            before = {part: cpu_seconds(found) for part, found in processes.items()}
            report_file = root / "report.json"
            argv = [sys.executable, str(ROOT / "stress_test.py"), "--url", site.cluster.url]
            argv += ["--password", ADMIN_PASSWORD, "--quiet", "--json", str(report_file)]
            argv += ["--images", str(args.images), "--size", args.size, "--format", args.format]
            if args.batch:
                argv += ["--batch", str(args.batch)]
            subprocess.run(in_namespace(network.switch, argv), cwd=ROOT, check=True)
            after = {part: cpu_seconds(found) for part, found in processes.items()}
        report = json.loads(report_file.read_text())
    per_image = {
        part: round((after[part] - before[part]) * 1000 / args.images, 2) for part in after
    }
    print(
        f"api_hosts={api_hosts} size={args.size} batch={args.batch}"
        f" images_per_s={report['images_per_s']:.1f} ok={report['ok']}"
        f" cpu_ms_per_image={per_image} total={sum(per_image.values()):.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--format", default="png", choices=("png", "jpeg"))
    parser.add_argument("--batch", type=int, default=50, help="0: one request per image")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    # Files are kept until the end: on a host whose file system is slow to create files
    # after mass deletes (bench/README.md), a deleted site would slow the next round.
    with tempfile.TemporaryDirectory(prefix="dpip-api-hosts-") as keep:
        for _ in range(args.rounds):
            for api_hosts in (1, 2):
                run_once(api_hosts, args, Path(keep))


if __name__ == "__main__":
    main()
