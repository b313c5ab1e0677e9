"""The cost of an empty HTTP request on DPIP's own stack: the floor under every image.

Each image costs the API at least three requests (the user's upload, the worker's download
of the original, the worker's upload of the result). This serves a Flask app with one empty
route through the same server DPIP uses (`api.server.ApiServer`, one process), sends it
requests from one thread with the client library the workers use (urllib3), and measures
the CPU of the server and of the client per request. Three such requests per image bound
what any image pipeline on this stack can do, before any real work:

    FLOOR requests=... server_cpu_ms=... client_cpu_ms=... wall_ms=... bound_ips=...

bound_ips = cores * 1000 / (3 * (server_cpu_ms + client_cpu_ms)).

    .venv/bin/python bench/http_floor.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import urllib3
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REQUESTS_PER_IMAGE = 3

from stress.system import free_ports  # noqa: E402


def serve(port: int) -> None:
    """Run the empty app on `port` with DPIP's server settings, one process."""
    from api.server import ApiServer

    app = Flask(__name__)
    app.add_url_rule("/empty", "empty", lambda: ("", 204))
    ApiServer(app, "127.0.0.1", port, processes=1, threads=8).run()


def wait_until_serving(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the empty server did not start")


def server_cpu_s(master: psutil.Process) -> float:
    processes = [master, *master.children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def measure(port: int, server: psutil.Process, count: int) -> tuple[float, float, float]:
    """CPU milliseconds per request of the server and of this client, and wall time."""
    pool = urllib3.PoolManager(maxsize=1, retries=False)
    url = f"http://127.0.0.1:{port}/empty"
    for _ in range(100):  # warm up: connections, code paths
        pool.request("GET", url)
    me = psutil.Process()
    server_before, client_before = server_cpu_s(server), sum(me.cpu_times()[:2])
    started = time.perf_counter()
    for _ in range(count):
        if pool.request("GET", url).status != 204:
            raise SystemExit("the empty server answered an error")
    wall_ms = (time.perf_counter() - started) * 1000 / count
    server_ms = (server_cpu_s(server) - server_before) * 1000 / count
    client_ms = (sum(me.cpu_times()[:2]) - client_before) * 1000 / count
    return server_ms, client_ms, wall_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    (port,) = free_ports(1)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], start_new_session=True
    )
    try:
        wait_until_serving(port, time.monotonic() + 30)
        server_ms, client_ms, wall_ms = measure(port, psutil.Process(child.pid), args.requests)
    finally:
        child.terminate()
        child.wait(timeout=30)
    cores = os.cpu_count() or 1
    bound = cores * 1000 / (REQUESTS_PER_IMAGE * (server_ms + client_ms))
    print(
        f"FLOOR requests={args.requests} server_cpu_ms={server_ms:.3f} "
        f"client_cpu_ms={client_ms:.3f} wall_ms={wall_ms:.3f} bound_ips={bound:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
