"""Turn what a run observed into the report's figures, and print them for a person."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from stress.run import Observations, StressRun


def percentile_ms(latencies: list[float], percent: int) -> float | None:
    return round(float(np.percentile(latencies, percent)) * 1000, 2) if latencies else None


def outcome_counts(observed: Observations) -> dict[str, int]:
    """Lost, duplicated and failed images, from what the polls and uploads saw."""
    accepted = set(observed.index_of)
    unknown = set(observed.available) - accepted  # more filtered numbers than uploads
    return {
        "lost": len(accepted - set(observed.available) - observed.failed),
        "duplicated": observed.numbers_given_twice
        + sum(observed.repeated_entries.values())
        + len(unknown),
        "failed": len(observed.failed),
    }


def span_s(starts: Iterable[float], ends: Iterable[float]) -> float | None:
    """Seconds from the first start to the last end; None when nothing ended."""
    starts, ends = list(starts), list(ends)
    return max(ends) - min(starts) if starts and ends else None


def cpu_per_image(
    before: dict[str, float] | None, after: dict[str, float] | None, images: int
) -> dict[str, float] | None:
    """CPU milliseconds per filtered image of each part, their total, and the images/s that
    total allows on this machine's cores if nothing else ran."""
    if before is None or after is None or not images:
        return None
    per_image = {part: round((after[part] - before[part]) * 1000 / images, 2) for part in after}
    total = sum(per_image.values())
    per_image["total"] = round(total, 2)
    per_image["bound_ips"] = round((os.cpu_count() or 1) * 1000 / total, 1) if total else None
    return per_image


def _cpu_line(cpu: dict[str, float] | str) -> str:
    if not isinstance(cpu, dict):
        return "n/a (a system this run did not start)"
    names = ("api", "controller", "workers", "client")
    parts = ", ".join(f"{part} {cpu[part]} ms" for part in names)
    return f"{parts}: {cpu['total']} ms in all, at most {cpu['bound_ips']} images/s on these cores"


def _archive_line(report: dict[str, Any]) -> str:
    if not report["archive"]:
        return ""
    if "archive_mb" not in report:
        return "archive     not fetched (the run did not finish)\n"
    problems = ", ".join(f"{kind}: {n}" for kind, n in report["archive_problems"].items())
    return (
        f"archive     {report['archive_mb']} MB in {report['archive_s']} s "
        f"({report['archive_mb_per_s']} MB/s), {report['archive_entries']} entries, "
        f"wrong {report['archive_wrong']}, problems {problems or 'none'}; API RSS "
        f"{report['api_rss_archive_start_mb']} MB at its start, "
        f"{report['api_rss_archive_peak_mb']} MB at most while it streamed\n"
    )


def build_report(args: argparse.Namespace, run: StressRun, finished: bool) -> dict[str, Any]:
    observed = run.observed
    latencies = [
        max(0.0, seen - observed.accepted[observed.index_of[key]])
        for key, seen in observed.available.items()
        if key in observed.index_of
    ]
    window = span_s(observed.started.values(), observed.available.values())
    upload_window = span_s(observed.started.values(), observed.accepted.values())
    return {
        "images": args.images,
        "workloads": args.workloads,
        "filter": args.filter,
        "radius": args.radius,
        "size": "x".join(map(str, args.size)),
        "format": args.format,
        "uploaders": 1 if args.sequential else args.uploaders,
        "sequential": args.sequential,
        "batch": args.batch,
        "upload_as": args.upload_as,
        "archive": args.archive,
        "workers": args.workers if args.spawn else None,
        "worker_concurrency": args.worker_concurrency if args.spawn else None,
        "uploaded": len(observed.accepted),
        "filtered": len(latencies),
        "wall_s": round(window, 3) if window else None,
        "images_per_s": round(len(latencies) / window, 2) if window else None,
        "upload_images_per_s": (
            round(len(observed.accepted) / upload_window, 2) if upload_window else None
        ),
        "p50_ms": percentile_ms(latencies, 50),
        "p95_ms": percentile_ms(latencies, 95),
        "p99_ms": percentile_ms(latencies, 99),
        **outcome_counts(observed),
        "timed_out": not finished,
    }


def print_report(report: dict[str, Any]) -> None:
    report = {name: "n/a" if value is None else value for name, value in report.items()}
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(report["errors"].items())) or "none"
    batches = f", batches of {report['batch']} as {report['upload_as']}" if report["batch"] else ""
    print(
        f"DPIP stress test: {report['images']} {report['size']} {report['format']} images, "
        f"filter {report['filter']}, {report['workloads']} workload(s), "
        f"{report['uploaders']} uploader(s){', sequential' if report['sequential'] else ''}"
        f"{batches}\n"
        f"throughput  {report['images_per_s']} images/s "
        f"({report['filtered']} filtered in {report['wall_s']} s; "
        f"uploads alone {report['upload_images_per_s']} images/s)\n"
        f"latency     p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, "
        f"p99 {report['p99_ms']} ms\n"
        f"API         GET /workloads/{{id}} {report['workload_get_ms']} ms (median), "
        f"RSS {report['api_rss_before_mb']} MB before, {report['api_rss_after_mb']} MB after, "
        f"{report['api_rss_max_mb']} MB at most\n"
        f"CPU/image   {_cpu_line(report['cpu_ms_per_image'])}\n"
        f"{_archive_line(report)}"
        f"errors      {errors}\n"
        f"images      lost {report['lost']}, wrong {report['wrong']}, "
        f"duplicated {report['duplicated']}, failed {report['failed']}\n"
        f"result      {'OK' if report['ok'] else 'FAILED'}"
        f"{' (timed out)' if report['timed_out'] else ''} in {report['total_s']} s"
    )
