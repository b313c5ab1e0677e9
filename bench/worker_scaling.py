"""Does one worker use every core? Throughput of concurrency 1 vs N on the same images.

Starts `dpip up --workers 1 --worker-concurrency C` in a temp dir for each C, uploads the
same 1080p JPEGs into a blur workload and times upload-to-completion. Prints the ratio.
Uses only the public CLI and HTTP API.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image, ImageDraw, ImageFilter

BIN = Path(sys.executable).parent


def photo(seed: int, size=(1920, 1080)) -> bytes:
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse(
            (x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 300)),
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(concurrency: int, images: list[bytes]) -> float:
    port, controller_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "DPIP_ADMIN_PASSWORD": "bench-password", "DPIP_LOG_LEVEL": "WARNING"}
        process = subprocess.Popen(
            [
                str(BIN / "dpip"),
                "up",
                "--port",
                str(port),
                "--controller-port",
                str(controller_port),
                "--workers",
                "1",
                "--worker-concurrency",
                str(concurrency),
            ],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            while "DPIP is up" not in process.stdout.readline():
                pass
            url = f"http://127.0.0.1:{port}"
            session = requests.Session()
            token = session.post(url + "/login", auth=("admin", "bench-password")).json()["token"]
            session.headers["Authorization"] = f"Bearer {token}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(w["alive"] for w in session.get(url + "/status").json()["workers"]):
                    break
                time.sleep(0.1)
            wid = session.post(url + "/workloads", json={"filter": "blur"}).json()["workload_id"]
            started = time.perf_counter()
            with ThreadPoolExecutor(4) as uploaders:
                list(
                    uploaders.map(
                        lambda data: session.post(
                            url + "/images", data={"workload_id": wid}, files={"data": ("x", data)}
                        ),
                        images,
                    )
                )
            while session.get(f"{url}/workloads/{wid}").json()["status"] != "completed":
                time.sleep(0.02)
            return len(images) / (time.perf_counter() - started)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    images = [photo(seed) for seed in range(args.images)]
    started = time.perf_counter()
    for data in images:
        blurred = Image.open(io.BytesIO(data)).filter(ImageFilter.GaussianBlur(2))
        blurred.save(io.BytesIO(), format="JPEG", quality=90)
    one_core = len(images) / (time.perf_counter() - started)
    single = run_once(1, images)
    full = run_once(cores, images)
    print(
        f"SCALING images={args.images} cores={cores} filter_only_1core_ips={one_core:.2f} "
        f"c1_ips={single:.2f} c{cores}_ips={full:.2f} ratio={full / single:.2f}"
    )


if __name__ == "__main__":
    main()
