"""Stress DPIP end to end: upload generated photos, time every result, verify every pixel.

Runs against a live system (--url, --user, --password) or one it starts itself (--spawn:
`dpip up` in a temp dir on free ports, stopped at the end). The images are generated before
the clock starts; throughput is filtered images / (last result available - first upload
started); the latency of an image is (first seen in the workload's `filtered_images`) -
(its upload answered 201). Every result is then downloaded and compared with Pillow's own.
Exits 1 when an image is lost, wrong, duplicated or failed, a request failed, or the
timeout hit; 2 when the system could not be set up. Uses only the HTTP API and the CLI.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import requests
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
JPEG_QUALITY = 90  # the server's setting, so the reference result is encoded the same way
JPEG_TOLERANCE = 2  # largest pixel difference accepted for JPEG; lossless formats must match
POLL_INTERVAL_S = 0.02  # between polling rounds while many images are in flight
POLL_SHARE = 0.2  # at most this share of the time polling: a 10k-image list costs the API ~13 ms
LATENCY_POLL_INTERVAL_S = 0.002  # --sequential: one image in flight, its latency is the figure
HTTP_TIMEOUT_S = 60.0
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0  # `dpip up` gives its own children 20 s
WORKLOAD_GET_SAMPLES = 20
NOISE_AMPLITUDE = 12  # sensor-like noise, so JPEG compresses the image like a photo

Key = tuple[int, int]  # (workload id, image number inside the workload)


class SetupFailed(RuntimeError):
    """Raised when the system under test cannot be started, reached or prepared."""


class RequestFailed(RuntimeError):
    """Raised when the API answers an unexpected status or cannot be reached."""


# --- images -------------------------------------------------------------------------------


def encode(image: Image.Image, image_format: str) -> bytes:
    """Encode as the server does: JPEG at quality 90, other formats with Pillow's defaults."""
    out = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if image_format == "JPEG" else {}
    image.save(out, format=image_format, **options)
    return out.getvalue()


def _gradient(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    corners = rng.uniform(0, 255, (4, 3)).astype(np.float32)
    across = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    down = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    top = corners[0] * (1 - across) + corners[1] * across
    bottom = corners[2] * (1 - across) + corners[3] * across
    return Image.fromarray((top * (1 - down) + bottom * down).astype(np.uint8), "RGB")


def _draw_shapes(rng: np.random.Generator, image: Image.Image) -> None:
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(int(rng.integers(12, 30))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        rx, ry = (int(v) for v in rng.integers(1, max(2, min(width, height) // 3), 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour)
        elif shape == 1:
            draw.rectangle((x - rx, y - ry, x + rx, y + ry), fill=colour)
        else:
            points = rng.integers(-rx, rx + 1, (5, 2)) + np.array([x, y])
            draw.polygon([(int(px), int(py)) for px, py in points], fill=colour)


def generate_image(index: int, size: tuple[int, int], image_format: str) -> bytes:
    """Draw a photo-like picture that depends only on its index, size and format.

    Shapes are drawn at a quarter of the size and scaled up so their edges are soft, then
    noise is added: JPEG then works as hard as on a photo, not as on a flat drawing.
    """
    rng = np.random.default_rng(index)
    width, height = size
    small = _gradient(rng, (max(8, width // 4), max(8, height // 4)))
    _draw_shapes(rng, small)
    image = small.resize(size, Image.Resampling.BICUBIC)
    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (height, width, 3), np.int16)
    pixels = np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels, "RGB"), image_format)


def generate_images(
    pool: Pool, count: int, size: tuple[int, int], image_format: str
) -> list[bytes]:
    """Generate images 0..count-1 in the pool."""
    tasks = [(index, size, image_format) for index in range(count)]
    return pool.starmap(generate_image, tasks, chunksize=max(1, count // 64))


def reference_filter(image: Image.Image, filter_name: str, radius: float) -> Image.Image:
    """Pillow's own result of a DPIP filter (grayscale or blur)."""
    if filter_name == "grayscale":
        return image.convert("L")
    return image.filter(ImageFilter.GaussianBlur(radius))


@dataclass(frozen=True)
class Check:
    """One downloaded result and what it should be the result of."""

    original: bytes
    filtered: bytes
    filter_name: str
    radius: float
    image_format: str


def result_is_correct(check: Check) -> bool:
    """Compare the server's result with Pillow's, encoded the server's way for JPEG."""
    with Image.open(io.BytesIO(check.original)) as original:
        expected = reference_filter(original, check.filter_name, check.radius)
    tolerance = 0
    if check.image_format == "JPEG":
        expected = Image.open(io.BytesIO(encode(expected, "JPEG")))
        tolerance = JPEG_TOLERANCE
    try:
        with Image.open(io.BytesIO(check.filtered)) as result:
            if (result.format, result.mode, result.size) != (
                check.image_format,
                expected.mode,
                expected.size,
            ):
                return False
            difference = np.abs(np.asarray(result, np.int16) - np.asarray(expected, np.int16))
    except OSError:  # undecodable bytes are a wrong result, counted as such
        return False
    return int(difference.max()) <= tolerance


# --- the system under test ----------------------------------------------------------------


@dataclass
class System:
    """Where the system answers, and its `dpip up` process when this run started it."""

    url: str
    user: str
    password: str
    supervisor: subprocess.Popen | None = None


def free_ports(count: int) -> list[int]:
    """Ports free on loopback now, all different."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until_up(process: subprocess.Popen, deadline: float) -> None:
    """Read `dpip up`'s output until it says it is up, and keep draining it so it never blocks."""
    up = threading.Event()
    tail: deque[str] = deque(maxlen=40)

    def drain() -> None:
        for line in process.stdout:
            tail.append(line)
            if "DPIP is up" in line:
                up.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = min(deadline, time.perf_counter() + STARTUP_TIMEOUT_S)
    while not up.wait(0.1):
        if process.poll() is not None:
            raise SetupFailed(f"dpip up exited with {process.returncode}:\n{''.join(tail)}")
        if time.perf_counter() > deadline:
            raise SetupFailed("dpip up was not up in time (see --timeout):\n" + "".join(tail))


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group, wait, then SIGKILL whatever is left of it."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def spawned_system(workers: int, concurrency: int | None, deadline: float) -> Iterator[System]:
    """Run `dpip up` in a temp dir on free ports for the duration of the block."""
    password = secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="dpip-stress-") as root:
        port, controller_port = free_ports(2)
        argv = [
            str(Path(sys.executable).with_name("dpip")),
            "up",
            *("--port", str(port), "--controller-port", str(controller_port)),
            *("--workers", str(workers)),
            *("--data-dir", f"{root}/data", "--images-dir", f"{root}/images"),
        ]
        if concurrency:
            argv += ["--worker-concurrency", str(concurrency)]
        env = {name: value for name, value in os.environ.items() if not name.startswith("DPIP_")}
        env.update(DPIP_ADMIN_PASSWORD=password, DPIP_LOG_LEVEL="WARNING")
        process = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            wait_until_up(process, deadline)
            yield System(f"http://127.0.0.1:{port}", "admin", password, process)
        finally:
            stop_process_group(process)


@contextmanager
def system_under_test(args: argparse.Namespace, deadline: float) -> Iterator[System]:
    """The system named by --url, or one started by --spawn."""
    if args.spawn:
        with spawned_system(args.workers, args.worker_concurrency, deadline) as system:
            yield system
    else:
        yield System(args.url, args.user, args.password)


def api_rss_mb(system: System) -> float | None:
    """Resident memory of a spawned system's API: the child of `dpip up` running `dpip api`
    and its server processes, summed (pages they share count once per process)."""
    if system.supervisor is None:
        return None
    with suppress(psutil.Error):  # a child that just exited: no figure this time
        for child in psutil.Process(system.supervisor.pid).children():
            if " api " in " ".join(child.cmdline()):
                processes = [child, *child.children(recursive=True)]
                return round(sum(p.memory_info().rss for p in processes) / 2**20, 1)
    return None


class Client:
    """The API as a user sees it, with one requests.Session per thread."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.token = ""
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(self, method: str, path: str, expected: int = 200, **kwargs: Any) -> requests.Response:
        """Send a request; raise RequestFailed naming the status or exception otherwise."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        try:
            response = self._session().request(
                method, self.url + path, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs
            )
        except requests.RequestException as e:
            raise RequestFailed(type(e).__name__) from e
        if response.status_code != expected:
            raise RequestFailed(f"HTTP {response.status_code}")
        return response

    def login(self, user: str, password: str) -> None:
        self.token = self.call("POST", "/login", auth=(user, password)).json()["token"]


def alive_workers(client: Client) -> int:
    return sum(worker["alive"] for worker in client.call("GET", "/status").json()["workers"])


def wait_for_workers(client: Client, count: int, deadline: float) -> None:
    """Wait until `count` workers are alive, so the clock starts on a ready cluster."""
    while alive_workers(client) < count:
        if time.perf_counter() > deadline:
            raise SetupFailed(f"{count} worker(s) did not join in time")
        time.sleep(0.1)


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    workload_id: int
    filter_name: str


def workload_filters(filter_option: str, count: int) -> list[str]:
    """The filter of each workload: --filter both alternates grayscale and blur."""
    if filter_option != "both":
        return [filter_option] * count
    return [("grayscale", "blur")[position % 2] for position in range(count)]


def create_workloads(client: Client, args: argparse.Namespace) -> list[Workload]:
    """Create the run's workloads, under names no earlier run used."""
    run_id = secrets.token_hex(4)
    created = []
    for position, filter_name in enumerate(workload_filters(args.filter, args.workloads)):
        body: dict[str, Any] = {
            "workload_name": f"stress-{run_id}-{position}",
            "filter": filter_name,
        }
        if filter_name == "blur":
            body["radius"] = args.radius
        answer = client.call("POST", "/workloads", 201, json=body).json()
        created.append(Workload(answer["workload_id"], filter_name))
    return created


@dataclass
class Observations:
    """What the run saw, recorded from the threads that saw it; `lock` guards every field."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: dict[int, float] = field(default_factory=dict)  # image index → upload sent
    accepted: dict[int, float] = field(default_factory=dict)  # image index → 201 received
    index_of: dict[Key, int] = field(default_factory=dict)
    available: dict[Key, float] = field(default_factory=dict)  # first seen as filtered
    failed: set[Key] = field(default_factory=set)
    numbers_given_twice: int = 0
    repeated_entries: dict[int, int] = field(default_factory=dict)  # workload → most repeats
    errors: Counter[str] = field(default_factory=Counter)

    def record_error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def record_upload(self, index: int, started: float, accepted: float, key: Key) -> None:
        with self.lock:
            self.started[index], self.accepted[index] = started, accepted
            if key in self.index_of:
                self.numbers_given_twice += 1
            else:
                self.index_of[key] = index

    def record_poll(self, workload_id: int, body: dict[str, Any], seen_at: float) -> None:
        filtered = body["filtered_images"]
        with self.lock:
            repeats = len(filtered) - len(set(filtered))
            previous = self.repeated_entries.get(workload_id, 0)
            self.repeated_entries[workload_id] = max(previous, repeats)
            for number in filtered:
                self.available.setdefault((workload_id, number), seen_at)
            self.failed.update((workload_id, item["image_id"]) for item in body["failed_images"])

    def finished(self) -> int:
        with self.lock:
            return len(self.available) + len(self.failed)

    def is_finished(self, key: Key) -> bool:
        with self.lock:
            return key in self.available or key in self.failed


@dataclass
class StressRun:
    """One run: the client, the images, the workloads they are dealt to, and the deadline."""

    client: Client
    images: list[bytes]
    workloads: list[Workload]
    format_name: str  # a key of FORMATS
    upload_as: str  # "body" or "form"
    deadline: float
    quiet: bool
    observed: Observations = field(default_factory=Observations)

    def workload_of(self, index: int) -> Workload:
        return self.workloads[index % len(self.workloads)]

    def upload(self, index: int) -> Key | None:
        """Upload image `index` and record when it was accepted; None when it failed."""
        workload = self.workload_of(index)
        data, mime_type = self.images[index], FORMATS[self.format_name][1]
        if self.upload_as == "body":
            request = {"data": data, "headers": {"Content-Type": mime_type}}
        else:
            request = {"files": {"data": (f"{index}.{self.format_name}", data, mime_type)}}
        started = time.perf_counter()
        try:
            response = self.client.call(
                "POST", "/images", 201, params={"workload_id": workload.workload_id}, **request
            )
        except RequestFailed as e:
            self.observed.record_error(f"upload {e}")
            return None
        key = (workload.workload_id, response.json()["image_id"])
        self.observed.record_upload(index, started, time.perf_counter(), key)
        return key

    def poll(self, workload: Workload) -> dict[str, Any] | None:
        """Read a workload and record the results that appeared; None when the read failed."""
        try:
            response = self.client.call("GET", f"/workloads/{workload.workload_id}")
        except RequestFailed as e:
            self.observed.record_error(f"poll {e}")
            return None
        body = response.json()
        self.observed.record_poll(workload.workload_id, body, time.perf_counter())
        return body

    def download(self, key: Key) -> bytes | None:
        workload_id, number = key
        try:
            return self.client.call(
                "GET", f"/images/{number}", params={"workload_id": workload_id, "type": "filtered"}
            ).content
        except RequestFailed as e:
            self.observed.record_error(f"download {e}")
            return None

    def run_concurrent(self, uploaders: int) -> bool:
        """Upload from a thread pool while polling every workload; False when time ran out."""
        total = len(self.images)
        bars = [
            tqdm(total=total, desc=desc, disable=self.quiet) for desc in ("uploaded", "filtered")
        ]
        with ThreadPoolExecutor(uploaders) as pool:
            futures = [pool.submit(self._upload_in_time, index) for index in range(total)]
            try:
                return self._wait_for_results(futures, *bars)
            finally:
                pool.shutdown(cancel_futures=True)
                for bar in bars:
                    bar.close()

    def _upload_in_time(self, index: int) -> None:
        if time.perf_counter() < self.deadline:
            self.upload(index)

    def _wait_for_results(self, futures: list[Future], upload_bar: tqdm, done_bar: tqdm) -> bool:
        pending = {workload.workload_id: workload for workload in self.workloads}
        while True:
            uploads_done = all(future.done() for future in futures)
            round_started = time.perf_counter()
            for workload in list(pending.values()):
                body = self.poll(workload)
                if uploads_done and body and _settled(body):
                    del pending[workload.workload_id]
            upload_bar.update(sum(future.done() for future in futures) - upload_bar.n)
            done_bar.update(min(done_bar.total, self.observed.finished()) - done_bar.n)
            if not pending:
                return True
            if time.perf_counter() > self.deadline:
                return False
            round_s = time.perf_counter() - round_started
            time.sleep(max(POLL_INTERVAL_S, round_s * (1 / POLL_SHARE - 1)))

    def run_sequential(self) -> bool:
        """Upload one image, wait for its result, then the next; False when time ran out."""
        with tqdm(total=len(self.images), desc="filtered", disable=self.quiet) as bar:
            for index in range(len(self.images)):
                if time.perf_counter() > self.deadline:
                    return False
                key = self.upload(index)
                if key is not None and not self._wait_for_image(self.workload_of(index), key):
                    return False
                bar.update()
        return True

    def _wait_for_image(self, workload: Workload, key: Key) -> bool:
        while time.perf_counter() < self.deadline:
            self.poll(workload)
            if self.observed.is_finished(key):
                return True
            time.sleep(LATENCY_POLL_INTERVAL_S)
        return False


def _settled(body: dict[str, Any]) -> bool:
    """Every job of the workload is done or failed (or it never got an image)."""
    return body["status"] == "completed" or body["images"]["total"] == 0


def count_wrong(run: StressRun, pool: Pool, radius: float, downloaders: int) -> int:
    """Download every result and count those that are not Pillow's result of their original."""
    observed = run.observed
    keys = sorted(key for key in observed.available if key in observed.index_of)
    filters = {workload.workload_id: workload.filter_name for workload in run.workloads}
    with ThreadPoolExecutor(downloaders) as threads:
        downloads = list(threads.map(run.download, keys))
    image_format = FORMATS[run.format_name][0]
    checks = [
        Check(run.images[observed.index_of[key]], data, filters[key[0]], radius, image_format)
        for key, data in zip(keys, downloads, strict=True)
        if data is not None
    ]
    verdicts = pool.imap(result_is_correct, checks, chunksize=max(1, len(checks) // 64))
    correct = sum(tqdm(verdicts, total=len(checks), desc="verified", disable=run.quiet))
    return len(keys) - correct


def median_get_ms(run: StressRun) -> float | None:
    """Median time of GET /workloads/{id} on the first (largest) workload, in ms."""
    path = f"/workloads/{run.workloads[0].workload_id}"
    samples = []
    for _ in range(WORKLOAD_GET_SAMPLES):
        started = time.perf_counter()
        try:
            run.client.call("GET", path)
        except RequestFailed as e:
            run.observed.record_error(f"workload GET {e}")
            return None
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)


# --- the report ---------------------------------------------------------------------------


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
    print(
        f"DPIP stress test: {report['images']} {report['size']} {report['format']} images, "
        f"filter {report['filter']}, {report['workloads']} workload(s), "
        f"{report['uploaders']} uploader(s){', sequential' if report['sequential'] else ''}\n"
        f"throughput  {report['images_per_s']} images/s "
        f"({report['filtered']} filtered in {report['wall_s']} s; "
        f"uploads alone {report['upload_images_per_s']} images/s)\n"
        f"latency     p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, "
        f"p99 {report['p99_ms']} ms\n"
        f"API         GET /workloads/{{id}} {report['workload_get_ms']} ms (median), "
        f"RSS {report['api_rss_before_mb']} MB before, {report['api_rss_after_mb']} MB after\n"
        f"errors      {errors}\n"
        f"images      lost {report['lost']}, wrong {report['wrong']}, "
        f"duplicated {report['duplicated']}, failed {report['failed']}\n"
        f"result      {'OK' if report['ok'] else 'FAILED'}"
        f"{' (timed out)' if report['timed_out'] else ''} in {report['total_s']} s"
    )


# --- the command --------------------------------------------------------------------------


def stress(
    system: System, args: argparse.Namespace, images: list[bytes], pool: Pool, deadline: float
) -> dict[str, Any]:
    """Prepare the system, run the timed part, then verify; return the report."""
    client = Client(system.url)
    try:
        client.login(system.user, system.password)
        if system.supervisor is not None:
            wait_for_workers(client, args.workers, deadline)
        workloads = create_workloads(client, args)
    except RequestFailed as e:
        raise SetupFailed(f"could not prepare the run: {e}") from e
    run = StressRun(client, images, workloads, args.format, args.upload_as, deadline, args.quiet)
    rss_before = api_rss_mb(system)
    finished = run.run_sequential() if args.sequential else run.run_concurrent(args.uploaders)
    get_ms = median_get_ms(run)
    rss_after = api_rss_mb(system)
    wrong = count_wrong(run, pool, args.radius, args.uploaders) if finished else 0
    report = build_report(args, run, finished)
    report.update(
        wrong=wrong,
        errors=dict(run.observed.errors),
        api_rss_before_mb=rss_before,
        api_rss_after_mb=rss_after,
        workload_get_ms=get_ms,
    )
    report["ok"] = finished and not (
        report["errors"] or any(report[name] for name in ("lost", "wrong", "duplicated", "failed"))
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="API of a running system, e.g. http://127.0.0.1:8080")
    target.add_argument(
        "--spawn", action="store_true", help="start `dpip up` in a temp dir, stop it at the end"
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
        "--upload-as",
        choices=("body", "form"),
        default="body",
        help="send each image as the request body (default) or as a multipart form",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="upload one image at a time and wait for its result before the next: "
        "the idle latency (polls every 2 ms instead of 20 ms)",
    )
    args = parser.parse_args(argv)
    if args.url and not args.password:
        parser.error("--url needs --password")
    if args.filter == "both" and args.workloads < 2:
        parser.error("--filter both needs --workloads 2 or more")
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
