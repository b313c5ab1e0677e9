"""Benchmark DPIP against the raw limit of the same cores, on the same images.

For each case: (1) the raw limit, decode -> filter -> encode of every image in a
multiprocessing Pool with one process per core, reading from and writing to disk (only the
pool run is timed); (2) DPIP end to end, `stress_test.py --spawn` with the same image
parameters (it generates the same images: the generator is shared), one request per image
or in batches, and for some cases the archive of the results; (3) with `--peer dask`, Dask
distributed on the same images (bench/dask_peer.py). Prints one CASE line per case, then
INFO, CPU, ARCHIVE, PEER and TARGET lines; the targets are information, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the stress test is an outside tool too: reuse its generator

from bench.cases import CASES, Case, lead_verdict, target_verdict  # noqa: E402
from bench.dask_peer import PeerRun, dask_missing, run_dask  # noqa: E402
from stress.images import FORMATS, filter_image_bytes, generate_images  # noqa: E402
from stress_test import parse_size  # noqa: E402

CASE_TIMEOUT_S = 600  # stress_test's own --timeout for one case
STOP_GRACE_S = 60  # for stress_test to stop the system it started


def filter_file(task: tuple[str, str, str, float]) -> None:
    """Decode, filter and encode one image from disk to disk, as a worker does in memory."""
    source, target, filter_name, radius = task
    Path(target).write_bytes(filter_image_bytes(Path(source).read_bytes(), filter_name, radius))


def raw_images_per_s(case: Case, images: list[bytes], pool: Pool, cores: int, root: Path) -> float:
    """Write the case's images to disk under `root`, then time filtering them all in the pool."""
    root.mkdir()
    tasks = []
    for index, data in enumerate(images):
        source = root / f"{index}.{case.image_format}"
        source.write_bytes(data)
        target = root / f"{index}.filtered.{case.image_format}"
        tasks.append((str(source), str(target), case.filter_name, case.radius))
    started = time.perf_counter()
    pool.map(filter_file, tasks, chunksize=max(1, len(images) // (16 * cores)))
    return len(images) / (time.perf_counter() - started)


def stress_test_argv(
    case: Case, count: int, workers: int, concurrency: int, root: Path
) -> list[str]:
    """stress_test.py on a system whose files stay in `root` (removed with the run's
    scratch), writing its report to `root`/report.json."""
    argv = [
        *(sys.executable, str(REPO / "stress_test.py"), "--spawn", "--spawn-dir", str(root)),
        *("--workers", str(workers), "--worker-concurrency", str(concurrency)),
        *("--images", str(count), "--size", case.size, "--format", case.image_format),
        *("--filter", case.filter_name, "--radius", str(case.radius)),
        *("--quiet", "--timeout", str(CASE_TIMEOUT_S), "--json", str(root / "report.json")),
    ]
    if case.batch:
        argv += ["--batch", str(case.batch), "--upload-as", case.upload_as]
    if case.archive:
        argv.append("--archive")
    return [*argv, "--sequential"] if case.sequential else argv


def run_stress_test(argv: list[str]) -> tuple[int, str]:
    """Run stress_test.py to its end; if it overruns or we are stopped, SIGTERM it and wait."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=CASE_TIMEOUT_S + STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        output = f"stress_test.py ran over {CASE_TIMEOUT_S + STOP_GRACE_S} s"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # it stops its system in `finally`
            process.wait(timeout=STOP_GRACE_S)
    return process.returncode, output


def dpip_report(
    case: Case, count: int, workers: int, concurrency: int, root: Path
) -> tuple[int, dict[str, Any] | None]:
    """stress_test.py's exit code and JSON report of the case (None when it wrote none)."""
    code, output = run_stress_test(stress_test_argv(case, count, workers, concurrency, root))
    if code != 0:
        print(f"WARN name={case.name} stress_test exit {code}:\n{output.strip()}", flush=True)
    report_path = root / "report.json"
    return code, json.loads(report_path.read_text()) if report_path.exists() else None


def figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def peer_line(name: str, peer: PeerRun, raw_ips: float, dpip_ratio: float | None, ok: bool) -> str:
    peer_ratio = peer.images_per_s / raw_ips
    return (
        f"PEER name={name} peer=dask images={peer.images} peer_ips={peer.images_per_s:.2f} "
        f"peer_ratio={peer_ratio:.2f} dpip_ratio={figure(dpip_ratio)} "
        f"verified={'yes' if peer.verified else 'no'} "
        f"ahead={lead_verdict(dpip_ratio, ok, peer_ratio, peer.verified)}"
    )


def print_details(name: str, report: dict[str, Any]) -> None:
    """The INFO line, and the CPU and ARCHIVE lines when the report has their figures."""
    print(
        f"INFO name={name} ok={'yes' if report['ok'] else 'no'} batch={report['batch']} "
        f"upload_ips={figure(report['upload_images_per_s'])} p99_ms={figure(report['p99_ms'])} "
        f"api_rss_before_mb={figure(report['api_rss_before_mb'])} "
        f"api_rss_after_mb={figure(report['api_rss_after_mb'])} "
        f"api_rss_max_mb={figure(report['api_rss_max_mb'])} "
        f"workload_get_ms={figure(report['workload_get_ms'])}"
    )
    cpu = report.get("cpu_ms_per_image")
    if cpu:
        print(
            f"CPU name={name} ms_per_image api={cpu['api']:.2f} "
            f"controller={cpu['controller']:.2f} workers={cpu['workers']:.2f} "
            f"client={cpu['client']:.2f} total={cpu['total']:.2f} bound_ips={cpu['bound_ips']}"
        )
    if "archive_mb" in report:
        problems = sum(report["archive_problems"].values())
        print(
            f"ARCHIVE name={name} mb={report['archive_mb']:.2f} "
            f"mb_per_s={figure(report['archive_mb_per_s'])} entries={report['archive_entries']} "
            f"wrong={report['archive_wrong']} problems={problems} "
            f"api_rss_start_mb={figure(report['api_rss_archive_start_mb'])} "
            f"api_rss_peak_mb={figure(report['api_rss_archive_peak_mb'])} "
            f"growth_mb={figure(report['archive_rss_growth_mb'])}"
        )


def run_case(
    case: Case,
    count: int,
    workers: int,
    concurrency: int,
    pool: Pool,
    peer: str | None,
    scratch: Path,
) -> None:
    """Measure one case: the raw limit, DPIP and (for a throughput case) the peer, on the
    same images; print its CASE, INFO, CPU, ARCHIVE, PEER and TARGET lines. Their files
    stay in `scratch` until the whole run ends (see `main`)."""
    cores = os.cpu_count() or 1
    image_format = FORMATS[case.image_format][0]
    images = generate_images(pool, count, parse_size(case.size), image_format)
    raw_ips = raw_images_per_s(case, images, pool, cores, scratch / f"{case.name}-raw")
    code, report = dpip_report(case, count, workers, concurrency, scratch / f"{case.name}-dpip")
    if report is None:
        print(f"CASE name={case.name} images={count} raw_ips={raw_ips:.2f} dpip_ips=n/a")
        return
    result = {**report, "raw_ips": raw_ips, "dpip_ips": report["images_per_s"]}
    result["ratio"] = result["dpip_ips"] / raw_ips if result["dpip_ips"] else None
    print(
        f"CASE name={case.name} images={count} raw_ips={raw_ips:.2f} "
        f"dpip_ips={figure(result['dpip_ips'])} ratio={figure(result['ratio'])} "
        f"p50_ms={figure(result['p50_ms'])} p95_ms={figure(result['p95_ms'])}"
    )
    print_details(case.name, report)
    run_ok = code == 0 and report["ok"]
    if peer and case.peer:
        peer_run = run_dask(pool, images, case.filter_name, case.radius, image_format, cores)
        print(peer_line(case.name, peer_run, raw_ips, result["ratio"], run_ok))
    for target in case.targets:
        met = target_verdict(target, result, run_ok)
        print(f'TARGET name={case.name} want="{target.description}" met={met}', flush=True)


def machine_line() -> str:
    """nproc, CPU model and RAM, to label the figures."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        "unknown",
    )
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f'MACHINE nproc={os.cpu_count()} cpu="{model}" ram_gib={ram_gib:.1f}'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = [case.name for case in CASES]
    parser.add_argument("--quick", action="store_true", help="small image counts: a smoke run")
    parser.add_argument(
        "--cases",
        type=lambda text: text.split(","),
        default=names,
        help=f"comma-separated subset of: {','.join(names)}",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local workers of `dpip up` (default: the CPU count; see bench/README.md)",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="slots per worker (default: CPU count / workers, so DPIP has the same cores)",
    )
    parser.add_argument(
        "--peer",
        choices=("dask",),
        help="also run Dask distributed on each throughput case's images (the peers extra)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.cases) - set(names)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    if args.peer == "dask" and (missing := dask_missing()):
        parser.error(missing)
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops stress_test.py


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cores = os.cpu_count() or 1
    concurrency = args.worker_concurrency or max(1, cores // args.workers)
    print(machine_line())
    print(
        f"CONFIG workers={args.workers} worker_concurrency={concurrency} quick={args.quick} "
        f"peer={args.peer or 'none'}"
    )
    # Nothing is deleted until the end: on a file system without a journal (this host's
    # ext4), creating files stays slow for a minute or more after many were deleted, so a
    # case that followed another's clean-up would pay for it (bench/README.md).
    with (
        tempfile.TemporaryDirectory(prefix="dpip-bench-") as scratch,
        multiprocessing.get_context("spawn").Pool(cores) as pool,
    ):
        for case in CASES:
            if case.name in args.cases:
                count = case.quick_images if args.quick else case.images
                run_case(case, count, args.workers, concurrency, pool, args.peer, Path(scratch))


if __name__ == "__main__":
    main()
