"""Find or start the system under test, stop what was started, and read its API's memory
and the CPU time of its parts."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from stress.errors import SetupFailed

STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0  # `dpip up` gives its own children 20 s


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
def _system_root(kept: Path | None) -> Iterator[str]:
    """`kept` (made if missing, left in place), or a temp dir removed at the end."""
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
        yield str(kept)
        return
    with tempfile.TemporaryDirectory(prefix="dpip-stress-") as root:
        yield root


@contextmanager
def spawned_system(
    workers: int, concurrency: int | None, deadline: float, kept_root: Path | None = None
) -> Iterator[System]:
    """Run `dpip up` on free ports for the duration of the block, its data and images in
    `kept_root` or in a temp dir."""
    password = secrets.token_urlsafe(18)
    with _system_root(kept_root) as root:
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
        with spawned_system(
            args.workers, args.worker_concurrency, deadline, args.spawn_dir
        ) as system:
            yield system
    else:
        yield System(args.url, args.user, args.password)


def _part(cmdline: list[str]) -> str:
    """Which part of a spawned system a child of `dpip up` runs."""
    command = " ".join(cmdline)
    if " api " in command:
        return "api"
    if " controller " in command:
        return "controller"
    return "workers"


def processes_by_part(system: System) -> list[tuple[str, list[psutil.Process]]]:
    """Each child of `dpip up` with its own children (the API's server processes, the
    workers' pools), named by the part it runs; empty for a system this run did not start."""
    if system.supervisor is None:
        return []
    with suppress(psutil.Error):  # `dpip up` just exited: nothing to measure
        return [
            (_part(child.cmdline()), [child, *child.children(recursive=True)])
            for child in psutil.Process(system.supervisor.pid).children()
        ]
    return []


def api_processes(system: System) -> list[psutil.Process]:
    """`dpip api` and its server processes; none for a system this run did not start."""
    return next((processes for part, processes in processes_by_part(system) if part == "api"), [])


def api_rss_mb(system: System, processes: list[psutil.Process] | None = None) -> float | None:
    """Resident memory of a spawned system's API: `dpip api` and its server processes
    (found now, or `processes` found before), summed (shared pages count once per process)."""
    with suppress(psutil.Error):  # a process that just exited: no figure this time
        found = api_processes(system) if processes is None else processes
        if found:
            return round(sum(p.memory_info().rss for p in found) / 2**20, 1)
    return None


@dataclass
class RssSamples:
    """The API's resident memory, in MB, sampled over a stretch of the run."""

    samples: list[float] = field(default_factory=list)

    @property
    def first_mb(self) -> float | None:
        return self.samples[0] if self.samples else None

    @property
    def peak_mb(self) -> float | None:
        return max(self.samples) if self.samples else None


@contextmanager
def watch_api_rss(system: System, interval_s: float) -> Iterator[RssSamples]:
    """Sample the API's RSS every `interval_s` on a thread while the block runs, and once
    before and after it; no samples for a system this run did not start."""
    watched = RssSamples()
    if system.supervisor is None:
        yield watched
        return
    stop = threading.Event()
    # Found once: finding them reads every process of the system (a few ms of the client's
    # CPU, which at 50 samples a second took a core's fifth from the system measured).
    processes = api_processes(system)

    def sample() -> None:
        if (rss := api_rss_mb(system, processes)) is not None:
            watched.samples.append(rss)

    def sample_until_stopped() -> None:
        while not stop.wait(interval_s):
            sample()

    sample()
    sampler = threading.Thread(target=sample_until_stopped, daemon=True)
    sampler.start()
    try:
        yield watched
    finally:
        stop.set()
        sampler.join()
        sample()


def cpu_seconds(system: System) -> dict[str, float] | None:
    """CPU seconds used so far by each part of a spawned system (its own child processes
    included) and by this client process."""
    if system.supervisor is None:
        return None
    totals = {"api": 0.0, "controller": 0.0, "workers": 0.0}
    for part, processes in processes_by_part(system):
        for process in processes:
            with suppress(psutil.Error):  # a pool process that just exited
                times = process.cpu_times()
                totals[part] += times.user + times.system
    mine = psutil.Process().cpu_times()
    totals["client"] = mine.user + mine.system
    return totals
