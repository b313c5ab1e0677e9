"""Stress DPIP end to end: upload generated photos, time every result, verify every pixel.

Runs against a live system (--url, --user, --password) or one it starts itself (--spawn:
`dpip up` in a temp dir on free ports, stopped at the end). The images are generated before
the clock starts, and uploaded one a request or (--batch N) N a request; throughput is
filtered images / (last result available - first upload started); the latency of an image
is (first seen in the workload's `filtered_images`) - (its upload answered 201). Every
result is then downloaded and compared with Pillow's own; with --archive, each workload's
results are also fetched as one zip, and every entry and the manifest checked.
Exits 1 when an image is lost, wrong, duplicated or failed, an archive is wrong, a request
failed, or the timeout hit; 2 when the system could not be set up. Uses only the HTTP API
and the CLI.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from client import Client, ClientError
from stress.archive import check_archives
from stress.batches import BATCH_ENCODINGS, MAX_BATCH
from stress.client import create_workloads, logged_in, wait_for_workers
from stress.errors import SetupFailed
from stress.images import FORMATS, generate_images
from stress.profile import profiled, py_spy_command
from stress.report import build_report, cpu_per_image, print_report
from stress.run import StressRun, count_wrong, median_get_ms
from stress.system import System, api_rss_mb, cpu_seconds, system_under_test, watch_api_rss

RSS_SAMPLE_S = 0.25  # the API's memory over the whole run, for its peak


def stress(
    system: System, args: argparse.Namespace, images: list[bytes], pool: Pool, deadline: float
) -> dict[str, Any]:
    """Prepare the system, run the timed part, then verify; return the report."""
    try:
        client = logged_in(system.url, system.user, system.password)
    except ClientError as e:
        raise SetupFailed(f"could not log in: {e}") from e
    with client:
        return _stress_as(client, system, args, images, pool, deadline)


def _stress_as(
    client: Client,
    system: System,
    args: argparse.Namespace,
    images: list[bytes],
    pool: Pool,
    deadline: float,
) -> dict[str, Any]:
    try:
        if system.supervisor is not None:
            wait_for_workers(client, args.workers, deadline)
        workloads = create_workloads(client, args)
    except ClientError as e:
        raise SetupFailed(f"could not prepare the run: {e}") from e
    run = StressRun(
        client, images, workloads, args.format, args.upload_as, deadline, args.quiet, args.batch
    )
    with watch_api_rss(system, RSS_SAMPLE_S) as rss:
        cpu_before = cpu_seconds(system)
        with profiled(system, args.profile):
            finished = (
                run.run_sequential() if args.sequential else run.run_concurrent(args.uploaders)
            )
        cpu_after = cpu_seconds(system)
        get_ms = median_get_ms(run)
        rss_after = api_rss_mb(system)
        wrong = count_wrong(run, pool, args.radius, args.uploaders) if finished else 0
        archive = (
            check_archives(run, system, pool, args.radius) if args.archive and finished else {}
        )
    report = build_report(args, run, finished)
    report.update(
        wrong=wrong,
        api_rss_before_mb=rss.first_mb,
        api_rss_after_mb=rss_after,
        api_rss_max_mb=rss.peak_mb,
        workload_get_ms=get_ms,
        cpu_ms_per_image=cpu_per_image(cpu_before, cpu_after, report["filtered"]),
        **archive,
        errors=dict(run.observed.errors),
    )
    report["ok"] = finished and not (
        report["errors"]
        or any(report[name] for name in ("lost", "wrong", "duplicated", "failed"))
        or (args.archive and (report["archive_wrong"] or report["archive_problems"]))
    )
    return report


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1920x1080: {text!r}") from e
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive: {text!r}")
    return width, height


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def batch_size(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_BATCH}: {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="API of a running system, e.g. http://127.0.0.1:8080")
    target.add_argument(
        "--spawn", action="store_true", help="start `dpip up` in a temp dir, stop it at the end"
    )
    parser.add_argument(
        "--spawn-dir",
        type=Path,
        metavar="DIR",
        help="--spawn: keep the system's data and images in DIR (made if missing, left in "
        "place) instead of a temp dir removed at the end; see bench/README.md for why a "
        "benchmark wants this",
    )
    parser.add_argument("--user", default="admin", help="with --url (default: admin)")
    parser.add_argument("--password", help="with --url")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="--spawn: local workers (default: the CPU count, so one slot each: on 2 cores "
        "2 workers x 1 slot filtered 64x64 images ~1.5x faster than 1 worker x 2 slots)",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=positive_int,
        help="--spawn: jobs at once per worker (default: dpip up's, CPU count / workers)",
    )
    parser.add_argument("--images", type=positive_int, default=100, help="default: 100")
    parser.add_argument(
        "--size", type=parse_size, default=(1920, 1080), help="WIDTHxHEIGHT (default: 1920x1080)"
    )
    parser.add_argument("--format", choices=FORMATS, default="jpeg", help="default: jpeg")
    parser.add_argument(
        "--filter",
        choices=("grayscale", "blur", "both"),
        default="grayscale",
        help="both: the workloads alternate grayscale and blur (needs --workloads 2 or more); "
        "each image still goes to one workload (default: grayscale)",
    )
    parser.add_argument("--radius", type=float, default=2.0, help="blur radius (default: 2)")
    parser.add_argument(
        "--workloads",
        type=positive_int,
        default=1,
        help="image i goes to workload i mod N (default: 1)",
    )
    parser.add_argument(
        "--uploaders", type=positive_int, default=4, help="concurrent uploads (default: 4)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="overall limit in seconds (default: 900)"
    )
    parser.add_argument(
        "--batch",
        type=batch_size,
        default=0,
        metavar="N",
        help=f"upload N images a request through POST /workloads/{{id}}/images (1 to "
        f"{MAX_BATCH}; default 0: one request per image, POST /images)",
    )
    parser.add_argument(
        "--upload-as",
        choices=("body", *BATCH_ENCODINGS),
        help="one image a request: as the request body (the only way); "
        "--batch: a multipart form with one part per image (default), a zip or a tar",
    )
    parser.add_argument(
        "--archive",
        action="store_true",
        help="after the run, download each workload's results as one zip "
        "(GET /workloads/{id}/archive), check every entry and the manifest, and report its "
        "MB/s and the API's memory while it streams",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="upload one image at a time and wait for its result before the next: "
        "the idle latency (long-polls the workload instead of polling it)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="--spawn: record each process of each part with py-spy during the timed part, "
        "one flame graph each in DIR (pip install py-spy)",
    )
    args = parser.parse_args(argv)
    if args.spawn_dir and not args.spawn:
        parser.error("--spawn-dir needs --spawn")
    if args.profile and not (args.spawn and py_spy_command()):
        parser.error("--profile needs --spawn and py-spy (pip install py-spy)")
    if args.url and not args.password:
        parser.error("--url needs --password")
    if args.filter == "both" and args.workloads < 2:
        parser.error("--filter both needs --workloads 2 or more")
    if args.batch and args.sequential:
        parser.error("--sequential uploads one image at a time: no --batch")
    if args.upload_as is None:
        args.upload_as = "form" if args.batch else "body"
    elif args.upload_as not in (BATCH_ENCODINGS if args.batch else ("body",)):
        unit = "a batch" if args.batch else "one image a request (add --batch N)"
        parser.error(f"--upload-as {args.upload_as} is not a way to send {unit}")
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops a spawned system


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.perf_counter()
    deadline = started + args.timeout
    cores = os.cpu_count() or 1
    try:
        with multiprocessing.get_context("spawn").Pool(cores) as pool:
            images = generate_images(pool, args.images, args.size, FORMATS[args.format][0])
            with system_under_test(args, deadline) as system:
                report = stress(system, args, images, pool, deadline)
    except SetupFailed as e:
        print(f"stress_test: {e}", file=sys.stderr)
        return 2
    report["total_s"] = round(time.perf_counter() - started, 1)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
