"""Benchmark DPIP against the raw limit of the same cores, on the same images.

For each case: (1) the raw limit, decode -> filter -> encode of every image in a
multiprocessing Pool with one process per core, reading from and writing to disk (only the
pool run is timed); (2) DPIP end to end, `stress_test.py --spawn` with the same image
parameters (it generates the same images: the generator is shared). Prints one CASE line per
case, then INFO and TARGET lines; the targets are information, never asserted.
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
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the stress test is an outside tool too: reuse its generator

from stress.images import FORMATS, encode, generate_images, reference_filter  # noqa: E402
from stress_test import parse_size  # noqa: E402

CASE_TIMEOUT_S = 600  # stress_test's own --timeout for one case
STOP_GRACE_S = 60  # for stress_test to stop the system it started


@dataclass(frozen=True)
class Target:
    """A figure the system should reach, shown next to the result."""

    description: str
    met: Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Case:
    """One benchmark: which images, how many, and what DPIP should reach on them."""

    name: str
    images: int
    quick_images: int
    size: str
    image_format: str  # a stress_test.py --format
    filter_name: str
    targets: tuple[Target, ...]
    radius: float = 2.0
    sequential: bool = False


CASES = (
    Case(
        "1080p_jpeg_grayscale",
        200,
        12,
        "1920x1080",
        "jpeg",
        "grayscale",
        (Target("ratio >= 0.65", lambda r: r["ratio"] >= 0.65),),
    ),
    Case(
        "1080p_jpeg_blur",
        200,
        12,
        "1920x1080",
        "jpeg",
        "blur",
        (Target("ratio >= 0.85", lambda r: r["ratio"] >= 0.85),),
    ),
    Case(
        "64px_png_grayscale",
        3000,
        300,
        "64x64",
        "png",
        "grayscale",
        (Target("dpip_ips >= 400", lambda r: r["dpip_ips"] >= 400),),
    ),
    Case(
        "idle_latency",
        50,
        10,
        "64x64",
        "png",
        "grayscale",
        (Target("p50_ms <= 15", lambda r: r["p50_ms"] <= 15),),
        sequential=True,
    ),
    Case(
        "10k_workload",
        10000,
        1000,
        "64x64",
        "png",
        "grayscale",
        (
            Target("api_rss_after_mb < 200", lambda r: r["api_rss_after_mb"] < 200),
            Target("workload_get_ms <= 5", lambda r: r["workload_get_ms"] <= 5),
        ),
    ),
)


def filter_file(task: tuple[str, str, str, float]) -> None:
    """Decode, filter and encode one image from disk to disk, as a worker does in memory."""
    source, target, filter_name, radius = task
    with Image.open(source) as image:
        image_format = image.format
        result = reference_filter(image, filter_name, radius)
    Path(target).write_bytes(encode(result, image_format))


def raw_images_per_s(case: Case, count: int, pool: Pool, cores: int) -> float:
    """Generate the case's images to disk, then time filtering them all in the pool."""
    size = parse_size(case.size)
    image_format = FORMATS[case.image_format][0]
    images = generate_images(pool, count, size, image_format)
    with tempfile.TemporaryDirectory(prefix="dpip-bench-raw-") as root:
        tasks = []
        for index, data in enumerate(images):
            source = Path(root, f"{index}.{case.image_format}")
            source.write_bytes(data)
            target = Path(root, f"{index}.filtered.{case.image_format}")
            tasks.append((str(source), str(target), case.filter_name, case.radius))
        started = time.perf_counter()
        pool.map(filter_file, tasks, chunksize=max(1, count // (16 * cores)))
        return count / (time.perf_counter() - started)


def stress_test_argv(
    case: Case, count: int, workers: int, concurrency: int, json_path: Path
) -> list[str]:
    argv = [
        *(sys.executable, str(REPO / "stress_test.py"), "--spawn"),
        *("--workers", str(workers), "--worker-concurrency", str(concurrency)),
        *("--images", str(count), "--size", case.size, "--format", case.image_format),
        *("--filter", case.filter_name, "--radius", str(case.radius)),
        *("--quiet", "--timeout", str(CASE_TIMEOUT_S), "--json", str(json_path)),
    ]
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
    case: Case, count: int, workers: int, concurrency: int
) -> tuple[int, dict[str, Any] | None]:
    """stress_test.py's exit code and JSON report of the case (None when it wrote none)."""
    with tempfile.TemporaryDirectory(prefix="dpip-bench-") as root:
        json_path = Path(root, "report.json")
        code, output = run_stress_test(
            stress_test_argv(case, count, workers, concurrency, json_path)
        )
        if code != 0:
            print(f"WARN name={case.name} stress_test exit {code}:\n{output.strip()}", flush=True)
        return code, json.loads(json_path.read_text()) if json_path.exists() else None


def target_verdict(target: Target, result: dict[str, Any], run_ok: bool) -> str:
    """`yes` only for a run whose every image came back right (a failed or timed-out run's
    figures say nothing); `n/a` when a figure is missing."""
    if not run_ok:
        return "no"
    try:
        return "yes" if target.met(result) else "no"
    except TypeError:  # a figure is missing (None)
        return "n/a"


def figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def run_case(case: Case, count: int, workers: int, concurrency: int, pool: Pool) -> None:
    """Measure one case both ways and print its CASE, INFO and TARGET lines."""
    cores = os.cpu_count() or 1
    raw_ips = raw_images_per_s(case, count, pool, cores)
    code, report = dpip_report(case, count, workers, concurrency)
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
    print(
        f"INFO name={case.name} ok={'yes' if report['ok'] else 'no'} "
        f"upload_ips={figure(report['upload_images_per_s'])} p99_ms={figure(report['p99_ms'])} "
        f"api_rss_before_mb={figure(report['api_rss_before_mb'])} "
        f"api_rss_after_mb={figure(report['api_rss_after_mb'])} "
        f"workload_get_ms={figure(report['workload_get_ms'])}"
    )
    cpu = report.get("cpu_ms_per_image")
    if cpu:
        print(
            f"CPU name={case.name} ms_per_image api={cpu['api']:.2f} "
            f"controller={cpu['controller']:.2f} workers={cpu['workers']:.2f} "
            f"client={cpu['client']:.2f} total={cpu['total']:.2f} bound_ips={cpu['bound_ips']}"
        )
    run_ok = code == 0 and report["ok"]
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


def parse_args() -> argparse.Namespace:
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
    args = parser.parse_args()
    unknown = set(args.cases) - set(names)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops stress_test.py


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cores = os.cpu_count() or 1
    concurrency = args.worker_concurrency or max(1, cores // args.workers)
    print(machine_line())
    print(f"CONFIG workers={args.workers} worker_concurrency={concurrency} quick={args.quick}")
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        for case in CASES:
            if case.name in args.cases:
                count = case.quick_images if args.quick else case.images
                run_case(case, count, args.workers, concurrency, pool)


if __name__ == "__main__":
    main()
