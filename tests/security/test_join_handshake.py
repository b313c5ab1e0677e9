"""The join handshake: the join token never crosses the wire, and a worker trusts only a
controller that proved it knows the token.

A fake controller (a pynng Rep0 of the test) records every byte a real worker sends it: as a
relay in front of the real controller, and as a squatter on the port of a crashed one.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator

import pynng
import pytest

from tests.conftest import Cluster, cluster_fixture, free_port, wait_until
from tests.security.helpers import database, join_token

JOINED = "joined as worker"

# What a squatter can answer: a challenge it cannot prove, an acceptance it cannot sign. The
# acceptance has the fields any version of JoinAccepted requires, so any worker could read it.
FAKE_CHALLENGE = {"kind": "join_challenge", "controller_nonce": "0" * 32, "controller_proof": "0"}
FORGED_ACCEPTANCE = {
    "kind": "join_accepted",
    "worker_id": 999,
    "api_url": "http://127.0.0.1:9",
    "worker_token": "forged",
    "rpc_key": "forged",
    "telemetry_port": 9,
    "broadcast_port": 9,
    "telemetry_interval_ms": 250,
    "controller_instance": "squatter",
}


def _kind(data: bytes) -> str:
    return json.loads(data)["kind"]


class FakeController:
    """A Rep0 on `port` that records each request and answers it with `answer(request)`."""

    def __init__(self, port: int, answer: Callable[[bytes], bytes]) -> None:
        self.port = port
        self.received: list[bytes] = []
        self._answer = answer
        self._stop = threading.Event()
        self._rep = pynng.Rep0(recv_timeout=100)
        # Bound at once if the port is free; a killed controller's port may take a moment.
        wait_until(self._listen, 10, f"port {port} to be free")
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _listen(self) -> bool:
        try:
            self._rep.listen(f"tcp://127.0.0.1:{self.port}")
        except pynng.AddressInUse:
            return False
        return True

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._rep.recv()
            except pynng.Timeout:
                continue
            self.received.append(data)
            self._rep.send(self._answer(data))

    def kinds(self) -> list[str]:
        return [_kind(data) for data in self.received]

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._rep.close()
        if isinstance(self._answer, Relay):
            self._answer.close()


@pytest.fixture
def fake_controller() -> Iterator[Callable[..., FakeController]]:
    """Start fake controllers for a test; each is closed at its end."""
    started: list[FakeController] = []

    def start(answer: Callable[[bytes], bytes], port: int | None = None) -> FakeController:
        started.append(FakeController(port or free_port(), answer))
        return started[-1]

    try:
        yield start
    finally:
        for fake in started:
            fake.close()


class Relay:
    """An answer that asks the real controller, or forges the answer to a JoinRequest."""

    def __init__(self, cluster: Cluster, forge_acceptance: bool = False) -> None:
        self._forge_acceptance = forge_acceptance
        self._req = pynng.Req0(recv_timeout=5000, send_timeout=5000)
        self._req.dial(f"tcp://127.0.0.1:{cluster.controller_port}")

    def __call__(self, data: bytes) -> bytes:
        if self._forge_acceptance and _kind(data) == "join":
            return json.dumps(FORGED_ACCEPTANCE).encode()
        self._req.send(data)
        return self._req.recv()

    def close(self) -> None:
        self._req.close()


def squat(data: bytes) -> bytes:
    challenge = _kind(data) == "join_hello"
    return json.dumps(FAKE_CHALLENGE if challenge else FORGED_ACCEPTANCE).encode()


cluster = cluster_fixture(workers=1)  # its own: its controller is killed at the module's end


def test_a_worker_joins_through_a_relay_that_never_sees_the_token(cluster, fake_controller):
    relay = fake_controller(Relay(cluster))
    cluster.start_worker("relayed", controller_port=relay.port)
    try:
        wait_until(lambda: JOINED in cluster.log("relayed"), 20, "the worker to join")
    finally:
        cluster.stop("relayed")
    assert relay.kinds()[:2] == ["join_hello", "join"]
    assert join_token(cluster).encode() not in b"".join(relay.received)


def test_a_forged_acceptance_is_not_trusted(cluster, fake_controller):
    """A relay passes the real controller's challenge on but forges the JoinAccepted: the
    worker finds no controller proof on it, and tries again instead of trusting it."""
    relay = fake_controller(Relay(cluster, forge_acceptance=True))
    cluster.start_worker("misled", controller_port=relay.port)
    try:
        wait_until(lambda: relay.kinds().count("join") >= 2, 20, "the worker to try twice")
        log = cluster.log("misled")
    finally:
        cluster.stop("misled")
    assert JOINED not in log
    assert "join not completed" in log
    assert join_token(cluster).encode() not in b"".join(relay.received)


def test_a_worker_with_a_wrong_token_is_refused_and_never_sends_it(cluster, fake_controller):
    """It cannot check the controller's proof, so it sends nothing but its hello, and exits
    with status 2 (a configuration error) since it never joined."""
    wrong = "wrong-" + join_token(cluster)[:12]
    relay = fake_controller(Relay(cluster))
    cluster.start_worker("wrong-token", join_token=wrong, controller_port=relay.port)
    try:
        assert cluster.processes["wrong-token"].wait(timeout=20) == 2
    finally:
        cluster.stop("wrong-token")
    assert "did not prove it knows the join token" in cluster.log("wrong-token")
    assert set(relay.kinds()) == {"join_hello"}
    assert wrong.encode() not in b"".join(relay.received)
    conn = database(cluster)
    try:
        assert conn.execute("SELECT 1 FROM workers WHERE name = 'wrong-token'").fetchone() is None
    finally:
        conn.close()


def test_a_squatter_on_the_port_of_a_crashed_controller_learns_nothing(cluster, fake_controller):
    """The report: after `kill -9` of the controller, another process bound its port and got
    a worker's JoinRequest with the join token in clear. Now it gets hellos only, the worker
    keeps trying (it joined before, so its token is right), and re-joins the real controller
    once that is back."""
    joins_before = len(cluster.join_ids("worker-1"))
    log_before = len(cluster.log("worker-1"))
    cluster.stop("controller", signal.SIGKILL)
    squatter = fake_controller(squat, port=cluster.controller_port)
    wait_until(lambda: len(squatter.received) >= 3, 30, "the worker to try the squatter")
    squatter.close()
    assert join_token(cluster).encode() not in b"".join(squatter.received)
    assert set(squatter.kinds()) == {"join_hello"}
    worker_log = cluster.log("worker-1")[log_before:]
    assert JOINED not in worker_log
    assert "did not prove it knows the join token" in worker_log
    assert cluster.processes["worker-1"].poll() is None  # still trying

    cluster.start_controller()
    cluster.wait_rejoined({"worker-1": joins_before}, timeout_s=30)
