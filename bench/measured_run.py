"""A stress_test.py run against a system, with each of its parts' CPU per image."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tests.conftest import ADMIN_PASSWORD

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def stress_args(description: str, images: int) -> argparse.Namespace:
    """The command line of a benchmark of stress_test.py runs: the images, their size and
    format, the batch size, the rounds (and the admin's password, for stress_test.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--format", default="png", choices=("png", "jpeg"))
    parser.add_argument("--batch", type=int, default=50, help="0: one request per image")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    args.password = ADMIN_PASSWORD
    return args


def measured_run(
    url: str,
    args: argparse.Namespace,
    root: Path,
    processes: dict[str, list[psutil.Process]],
    wrap: Callable[[list[str]], list[str]] = list,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run stress_test.py (`args.images` of `args.size` in `args.format`, in batches of
    `args.batch` or one request each when 0) against `url`, its command passed through
    `wrap` (to run it in a namespace, say); return its report and each part's CPU ms per
    image over the run."""
    before = {part: cpu_seconds(found) for part, found in processes.items()}
    report_file = root / "report.json"
    argv = [sys.executable, str(ROOT / "stress_test.py"), "--url", url, "--quiet"]
    argv += ["--password", args.password, "--json", str(report_file)]
    argv += ["--images", str(args.images), "--size", args.size, "--format", args.format]
    if args.batch:
        argv += ["--batch", str(args.batch)]
    subprocess.run(wrap(argv), cwd=ROOT, check=True)
    after = {part: cpu_seconds(found) for part, found in processes.items()}
    per_image = {
        part: round((after[part] - before[part]) * 1000 / args.images, 2) for part in after
    }
    return json.loads(report_file.read_text()), per_image


def print_run(
    label: str, args: argparse.Namespace, report: dict[str, Any], per_image: dict[str, float]
) -> None:
    print(
        f"{label} size={args.size} batch={args.batch}"
        f" images_per_s={report['images_per_s']:.1f} ok={report['ok']}"
        f" cpu_ms_per_image={per_image} total={sum(per_image.values()):.2f}",
        flush=True,
    )
