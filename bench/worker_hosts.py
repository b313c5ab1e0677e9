"""Fifty workers on their own hosts (issue 17's figures), on simulated hosts.

The layout of the fifty-worker test (tests/worker_fleet.py): the controller and the API
(SQLite, the local image dir) in one network namespace, the workers (one slot each) spread
over others, ten a host, started a wave at a time; the client on the switch. psutil reads
each part's CPU and memory. Prints the time for the workers to join (each wave and in
all), the controller's CPU per telemetry message (its CPU over an idle window over the
messages the window should hold), its CPU per job (over a run, less the idle rate), the
memory of each worker with its pool process, and the telemetry interval at which the
controller would spend one core on 1 000 workers. Every part shares the same cores. Needs
root and iproute2.

    .venv/bin/python bench/worker_hosts.py [--hosts 5] [--per-host 10] [--wave 10]
        [--images 2000] [--idle-s 20] [--telemetry-interval-ms 1000] [--prefetch N]
        [--api-processes N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measured_run import cpu_seconds  # noqa: E402
from tests.netns import inside, simulated_network  # noqa: E402
from tests.outcomes import job_records  # noqa: E402
from tests.worker_fleet import (  # noqa: E402
    TELEMETRY_INTERVAL_MS,
    Fleet,
    fleet_addresses,
    start_fleet,
    start_in_waves,
    tiny_pngs,
)

SUBNET = "10.213.13"
MB = 1024 * 1024
FLEET_SIZE = 1000  # the workers of the one-core telemetry figure


def parts(fleet: Fleet) -> dict[str, list[psutil.Process]]:
    """The controller's process; the API's and the workers' with their children (gunicorn's
    processes, each worker's pool process)."""
    found: dict[str, list[psutil.Process]] = {"controller": [], "api": [], "workers": []}
    for name, popen in fleet.cluster.processes.items():
        process = psutil.Process(popen.pid)
        part = name if name in ("controller", "api") else "workers"
        found[part] += [process, *process.children(recursive=True)]
    return found


def worker_rss_mb(fleet: Fleet) -> list[float]:
    """Each worker's resident memory with its pool process's, in MB."""
    sizes = []
    for name in fleet.names():
        process = psutil.Process(fleet.cluster.processes[name].pid)
        family = [process, *process.children(recursive=True)]
        sizes.append(sum(p.memory_info().rss for p in family) / MB)
    return sizes


def cpu_over(processes: dict[str, list[psutil.Process]], during) -> tuple[dict[str, float], float]:
    """Each part's CPU seconds while `during()` runs, and its wall time."""
    before = {part: cpu_seconds(found) for part, found in processes.items()}
    started = time.monotonic()
    during()
    took = time.monotonic() - started
    return {part: cpu_seconds(found) - before[part] for part, found in processes.items()}, took


def measure(fleet: Fleet, args: argparse.Namespace) -> None:
    waves = start_in_waves(fleet, args.wave, timeout_s=120)
    workers = len(fleet.names())
    print(
        f"JOIN workers={workers} wave={args.wave} total_s={sum(waves):.1f}"
        f" waves_s={','.join(f'{s:.1f}' for s in waves)}",
        flush=True,
    )
    processes = parts(fleet)
    time.sleep(args.settle_s)  # the last wave's first reports and prefetch settle
    idle, idle_s = cpu_over(processes, lambda: time.sleep(args.idle_s))
    messages = workers * idle_s * 1000 / args.telemetry_interval_ms
    per_message_ms = idle["controller"] * 1000 / messages
    print(
        f"IDLE window_s={idle_s:.1f} interval_ms={args.telemetry_interval_ms}"
        f" messages={messages:.0f} controller_ms_per_message={per_message_ms:.3f}"
        + "".join(f" {part}_cores={cpu / idle_s:.3f}" for part, cpu in idle.items()),
        flush=True,
    )
    sizes = worker_rss_mb(fleet)
    print(
        f"MEMORY worker_mb mean={statistics.mean(sizes):.1f} min={min(sizes):.1f}"
        f" max={max(sizes):.1f} all_workers_gb={sum(sizes) / 1024:.2f}",
        flush=True,
    )
    images = tiny_pngs(args.images)
    admin = fleet.admin()
    workload_id = admin.api.create_workload("bench", "grayscale").id

    def run() -> None:
        admin.api.upload(workload_id, images, batch=args.batch)
        admin.api.wait(workload_id, timeout=600)

    busy, run_s = cpu_over(processes, run)
    done = Counter(record.worker for record in job_records(fleet.cluster, workload_id).values())
    jobs = [done[name] for name in fleet.names()]
    per_job = {
        part: (cpu - idle[part] / idle_s * run_s) * 1000 / args.images for part, cpu in busy.items()
    }
    print(
        f"RUN images={args.images} images_per_s={args.images / run_s:.1f}"
        + "".join(f" {part}_ms_per_job={ms:.2f}" for part, ms in per_job.items()),
        flush=True,
    )
    print(
        f"SPREAD fair_share={args.images / workers:.0f} jobs_per_worker min={min(jobs)}"
        f" median={statistics.median(jobs):.0f} max={max(jobs)}"
        f" above_twice_fair={sum(n > 2 * args.images / workers for n in jobs)}",
        flush=True,
    )
    print(
        f"SCALE workers={FLEET_SIZE} controller_one_core_interval_ms="
        f"{FLEET_SIZE * per_message_ms:.0f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=5, help="worker hosts")
    parser.add_argument("--per-host", type=int, default=10, help="workers per host")
    parser.add_argument("--wave", type=int, default=10, help="workers started at once")
    parser.add_argument("--images", type=int, default=2000, help="16x16 PNGs, grayscale")
    parser.add_argument("--batch", type=int, default=100, help="images per upload request")
    parser.add_argument("--idle-s", type=float, default=20.0, help="the idle window")
    parser.add_argument("--settle-s", type=float, default=3.0, help="wait before the window")
    parser.add_argument("--telemetry-interval-ms", type=int, default=TELEMETRY_INTERVAL_MS)
    parser.add_argument("--prefetch", type=int, help="each worker's (default: the worker's)")
    parser.add_argument("--api-processes", type=int, help="(default: dpip api's)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="dpip-worker-hosts-") as root,
        simulated_network(
            f"w{os.getpid()}", SUBNET, fleet_addresses(SUBNET, args.hosts)
        ) as network,
        contextlib.ExitStack() as running,
        inside(network.switch),
    ):
        env = {"DPIP_LOG_LEVEL": "WARNING"}
        if args.prefetch is not None:
            env["DPIP_WORKER_PREFETCH"] = str(args.prefetch)
        fleet = start_fleet(
            network,
            Path(root),
            running,
            args.per_host,
            env,
            args.telemetry_interval_ms,
            args.api_processes,
        )
        measure(fleet, args)


if __name__ == "__main__":
    main()
