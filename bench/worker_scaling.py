"""Does one worker use every core? One worker at concurrency 1, then at the CPU count.

Runs `stress_test.py --spawn --workers 1 --worker-concurrency C` on the same 1080p JPEG
blur workload for each C, and a single-core filter-only baseline in this process.
Prints `SCALING ... ratio=...` (throughput at C = cores over C = 1).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from stress.images import generate_image  # noqa: E402 - the generator the stress test uses

SIZE = (1920, 1080)


def one_core_images_per_s(images: list[bytes]) -> float:
    """Decode, blur and encode every image in this process: the single-core baseline."""
    started = time.perf_counter()
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            image.filter(ImageFilter.GaussianBlur(2)).save(io.BytesIO(), format="JPEG", quality=90)
    return len(images) / (time.perf_counter() - started)


def dpip_images_per_s(concurrency: int, count: int) -> float:
    """Run the stress test against one spawned worker with `concurrency` slots."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "stress_test.py"),
                "--spawn",
                "--workers",
                "1",
                "--worker-concurrency",
                str(concurrency),
                "--images",
                str(count),
                "--size",
                f"{SIZE[0]}x{SIZE[1]}",
                "--format",
                "jpeg",
                "--filter",
                "blur",
                "--quiet",
                "--json",
                str(report_path),
            ],
            check=True,
            timeout=900,
        )
        return json.loads(report_path.read_text())["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    images = [generate_image(index, SIZE, "JPEG") for index in range(args.images)]
    baseline = one_core_images_per_s(images)
    single = dpip_images_per_s(1, args.images)
    full = dpip_images_per_s(cores, args.images)
    print(
        f"SCALING images={args.images} cores={cores} filter_only_1core_ips={baseline:.2f} "
        f"c1_ips={single:.2f} c{cores}_ips={full:.2f} ratio={full / single:.2f}"
    )


if __name__ == "__main__":
    main()
