"""Slow and idle clients against the real API: they cost sockets, never request threads.

Each attack opens raw sockets that send `G`, nothing, part of a head or a body byte by byte,
or never close after their answer. With gunicorn's own threaded worker each of them held a
request thread (2 processes x 8) or stalled the poller thread for 2 s: normal requests went
unanswered and the server never closed the slow sockets.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import psutil
import pytest
import requests

from tests.conftest import ADMIN_PASSWORD, Cluster, noise_png, running_cluster, wait_until
from tests.security.helpers import NO_WORKER

NORMAL_REQUESTS = 30
ANSWER_TIMEOUT_S = 5  # generous: an answer takes milliseconds when no slow client holds a thread
TRICKLE_EVERY_S = 0.2  # well inside the idle timeout below: only the deadlines cut tricklers
STRICT_MAX_HEAD_BYTES = 4096
STRICT_MAX_CONNECTIONS = 100  # per API process
STRICT_LIMITS = {
    "DPIP_API_HEAD_TIMEOUT_S": "1",
    "DPIP_API_IDLE_TIMEOUT_S": "1",
    "DPIP_API_BODY_MIN_BYTES_PER_S": "1024",
    "DPIP_API_MAX_HEAD_BYTES": str(STRICT_MAX_HEAD_BYTES),
    "DPIP_API_MAX_CONNECTIONS": str(STRICT_MAX_CONNECTIONS),
}


@pytest.fixture(scope="module")
def patient_api(tmp_path_factory) -> Iterator[Cluster]:
    """An API whose head timeout outlasts each test: no slow socket is closed meanwhile."""
    env = {"DPIP_API_HEAD_TIMEOUT_S": "60"}
    with running_cluster(tmp_path_factory.mktemp("patient"), workers=0, env=env) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def strict_api(tmp_path_factory) -> Iterator[Cluster]:
    """An API with one-second timeouts, a small head limit and a small connection cap."""
    root = tmp_path_factory.mktemp("strict")
    with running_cluster(root, workers=0, env=STRICT_LIMITS) as cluster:
        yield cluster


def _connect(cluster: Cluster, first_bytes: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", cluster.api_port), timeout=5)
    sock.sendall(first_bytes)
    return sock


def _head(request_line: str, token: str | None = None, ended: bool = True, **fields: str) -> bytes:
    """A request head with `fields` (X_Pad: X-Pad); not `ended`: cut inside the last value."""
    lines = [f"{request_line} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
    head = "\r\n".join(lines).encode()
    return head + b"\r\n\r\n" if ended else head


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed `sock` (reading past any answer it sent first)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        pass
    return True


@contextlib.contextmanager
def _trickling(socks: list[socket.socket], byte: bytes) -> Iterator[None]:
    """Send `byte` on each socket every TRICKLE_EVERY_S until it is closed or the block ends."""
    stop = threading.Event()

    def trickle() -> None:
        live = list(socks)
        while live and not stop.wait(TRICKLE_EVERY_S):
            for sock in list(live):
                try:
                    sock.send(byte)
                except OSError:
                    live.remove(sock)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def _opened(socks: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _normal_answers(cluster: Cluster, token: str) -> list[str]:
    """GET /status NORMAL_REQUESTS times, half on one kept-alive connection, half on new ones."""
    session = requests.Session()
    outcomes = []
    for i in range(NORMAL_REQUESTS):
        get = session.get if i % 2 else requests.get
        try:
            response = get(
                cluster.url + "/status",
                headers={"Authorization": f"Bearer {token}"},
                timeout=ANSWER_TIMEOUT_S,
            )
            outcomes.append(str(response.status_code))
        except requests.RequestException as e:
            outcomes.append(type(e).__name__)
    return outcomes


def test_slow_clients_hold_no_thread(patient_api: Cluster) -> None:
    """Sockets that send `G`, nothing or an endless head, and clients that never close after
    their answer: normal requests are answered meanwhile."""
    token = patient_api.login("admin", ADMIN_PASSWORD).token
    endless = _head("GET /status", token, ended=False, X_Slow="")
    held = (
        [_connect(patient_api, b"G") for _ in range(100)]
        + [_connect(patient_api) for _ in range(100)]
        + [_connect(patient_api, endless) for _ in range(50)]
    )
    last_request = _head("GET /status", Connection="close")
    not_closing = [_connect(patient_api, last_request) for _ in range(16)]
    with _opened(held + not_closing), _trickling(held[200:], b"a"):
        assert _normal_answers(patient_api, token) == ["200"] * NORMAL_REQUESTS
        assert not any(_closed_by_server(sock) for sock in held)  # all held meanwhile


def test_server_closes_slow_clients(strict_api: Cluster) -> None:
    admin = strict_api.login("admin", ADMIN_PASSWORD)
    workload_id = admin.create_workload(workload_name="slow", tags=NO_WORKER)["workload_id"]
    body_head = _head(
        f"POST /images?workload_id={workload_id}",
        admin.token,
        Content_Type="image/png",
        Content_Length="1000000",
    )
    partial = _head("GET /status", ended=False, X_Slow="")
    head_tricklers = [_connect(strict_api, partial) for _ in range(16)]
    body_tricklers = [_connect(strict_api, body_head) for _ in range(8)]
    one_byte = [_connect(strict_api, b"G") for _ in range(64)]
    silent = [_connect(strict_api) for _ in range(32)]
    socks = head_tricklers + body_tricklers + one_byte + silent
    with _opened(socks), _trickling(head_tricklers, b"a"), _trickling(body_tricklers, b"x"):
        # A normal client's big body is read in full meanwhile (1 s idle, 1 KiB/s minimum).
        big = noise_png((1600, 1200))
        response = requests.post(
            strict_api.url + "/images",
            params={"workload_id": workload_id},
            data=big,
            headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "image/png"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        assert len(big) > 4 * 1024 * 1024
        _wait_all_closed(socks)


def _wait_all_closed(socks: list[socket.socket]) -> None:
    still_open = set(socks)

    def all_closed() -> bool:
        still_open.difference_update([s for s in still_open if _closed_by_server(s)])
        return not still_open

    wait_until(all_closed, 20, "the API to close every slow socket")


def test_head_over_the_limit_is_refused(strict_api: Cluster) -> None:
    token = strict_api.login("admin", ADMIN_PASSWORD).token
    status_lines = []
    for pad in (STRICT_MAX_HEAD_BYTES // 2, STRICT_MAX_HEAD_BYTES):
        head = _head("GET /status", token, X_Pad="p" * pad)
        with _opened([_connect(strict_api, head)]) as (sock,):
            status_lines.append(sock.recv(100).split(b"\r\n")[0])
    assert status_lines == [b"HTTP/1.1 200 OK", b"HTTP/1.1 431 Request Header Fields Too Large"]


def _client_connections(cluster: Cluster) -> list[int]:
    """Per API process: its connections from clients on the API port."""
    master = psutil.Process(cluster.processes["api"].pid)
    return [
        sum(
            1
            for c in child.net_connections(kind="tcp")
            if c.laddr.port == cluster.api_port and c.status != psutil.CONN_LISTEN
        )
        for child in master.children()
    ]


def test_connections_per_process_are_capped(strict_api: Cluster) -> None:
    with _opened([_connect(strict_api) for _ in range(3 * STRICT_MAX_CONNECTIONS)]):
        wait_until(
            lambda: max(_client_connections(strict_api)) >= STRICT_MAX_CONNECTIONS,
            10,
            "an API process to hold its most connections",
        )
        most = max(max(_client_connections(strict_api)) for _ in range(10))
    assert most == STRICT_MAX_CONNECTIONS
