"""Oversized rpyc frames on the worker's rpc port are refused before anything is allocated.

rpyc reads as many bytes as a frame's header claims, and inflates a frame flagged as
compressed without a limit, before the service sees the call: a 521 KB frame took a worker
to 1 GB. Sent to the real worker without the key's proof, they are refused at the proof;
sent after a valid proof (to the same server code in this process, whose key the test
knows), the frame bound refuses them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundation.defaults import RPC_MAX_FRAME_BYTES
from protocol.rpc import connect_proof
from tests.conftest import ADMIN_PASSWORD, Cluster, image_bytes, start_cluster
from tests.security.helpers import database

MiB = 1024 * 1024
FRAME_HEADER = struct.Struct("!LB")  # rpyc's: payload length, compressed flag
CLAIMED_BODY_SENT = 256 * MiB  # what the huge-claim attack sends if nobody stops it
BOMB_INFLATED = 48 * MiB
PEAK_GROWTH_ALLOWED = 16 * MiB


@pytest.fixture(scope="module")
def frames_cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A cluster of its own with one worker: its jobs must run after the attacks."""
    cluster = start_cluster(tmp_path_factory.mktemp("rpc-frames"), workers=1)
    try:
        yield cluster
    finally:
        cluster.stop_all()


def _rpc_address(cluster: Cluster) -> tuple[str, int]:
    conn = database(cluster)
    try:
        query = "SELECT rpc_host, rpc_port FROM workers WHERE name = 'worker-1'"
        return conn.execute(query).fetchone()
    finally:
        conn.close()


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes: a short spike counts too."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def _send_until_refused(
    address: tuple[str, int], data: bytes, then_zeros: int, proof: bytes = b""
) -> int:
    """Send `data`, then up to `then_zeros` zero bytes while the worker reads; return how many
    bytes went out. Asserts that the worker then closes the connection."""
    sent = 0
    chunk = bytes(MiB)
    with socket.create_connection(address, timeout=10) as sock:
        try:
            sock.sendall(proof + data)
            sent = len(data)
            while sent < len(data) + then_zeros:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return sent  # closed by the worker while we sent
        sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread
            assert sock.recv(1) == b"", "the worker answered instead of closing"
    return sent


def _bomb() -> bytes:
    payload = zlib.compress(bytes(BOMB_INFLATED), 9)
    assert len(payload) < RPC_MAX_FRAME_BYTES  # the premise: the frame itself is small
    return FRAME_HEADER.pack(len(payload), 1) + payload + b"\n"


ATTACKS = [
    pytest.param(FRAME_HEADER.pack(0xFFFFFFFF, 0), CLAIMED_BODY_SENT, id="4-GiB-claim"),
    pytest.param(_bomb(), 0, id="compressed-bomb"),
]


@pytest.mark.parametrize(("data", "then_zeros"), ATTACKS)
def test_oversized_frame_is_refused_without_growing_the_worker(frames_cluster, data, then_zeros):
    pid = frames_cluster.processes["worker-1"].pid
    peak_before = _peak_rss(pid)
    sent = _send_until_refused(_rpc_address(frames_cluster), data, then_zeros)
    assert sent < len(data) + 32 * MiB  # refused at the header, not read to the end
    assert _peak_rss(pid) - peak_before < PEAK_GROWTH_ALLOWED


def test_worker_still_runs_jobs_after_the_attacks(frames_cluster):
    admin = frames_cluster.login("admin", ADMIN_PASSWORD)
    wid = admin.create_workload(filter="grayscale", workload_name="after")["workload_id"]
    assert admin.upload(wid, image_bytes("PNG")).status_code == 201
    assert admin.wait_completed(wid, timeout_s=30)["filtered_images"] == [0]
    assert frames_cluster.log("worker-1").count("refused a") >= 2


@pytest.mark.parametrize(("data", "then_zeros"), ATTACKS)
def test_oversized_frame_after_the_key_proof_is_refused_unallocated(
    keyed_rpc_server, data, then_zeros
):
    tracemalloc.start()
    try:
        sent = _send_until_refused(
            keyed_rpc_server.address, data, then_zeros, connect_proof(keyed_rpc_server.key)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent < len(data) + 32 * MiB
    assert peak < PEAK_GROWTH_ALLOWED
