"""Floods of bad messages at the controller's ports, while two real workers run a workload.

The report: a join with a wrong token and a 900 KB worker name was logged whole (1.24 GB of
log in 5 s); repeated `{"kind":"telemetry"}` wrote 24 MB in 5 s; ~1 MB telemetry messages
at 40/s saturated the telemetry thread, so real telemetry was dropped, both workers were
declared dead every ~6 s and a job used up its attempts. Here the same attacks run for a few
seconds: the log must stay small, messages over the size limit must not get in, and the
workers must stay alive and finish the workload meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pynng
import pytest

from protocol import JoinAccepted, Telemetry
from tests.conftest import (
    ADMIN_PASSWORD,
    Client,
    Cluster,
    image_bytes,
    join,
    start_cluster,
    wait_until,
)
from tests.outcomes import JobRecord, assert_done_once, database, job_records
from tests.security.helpers import join_token, recorded_cpu

FLOOD_S = 3.0
IMAGES = 6
LOG_GROWTH_LIMIT = 200_000
HUGE_NAME = "n" * 900_000  # over the message size limit
LONG_NAME = "n" * 60_000  # under it: refused, and quoted in the log
WORKERS = ("worker-1", "worker-2")


def _join_json(name: str, **fields) -> bytes:
    """A join request with a wrong token, as an attacker without the join token sends it."""
    fields = {"tags": [], "concurrency": 1, "rpc_host": "127.0.0.1", "rpc_port": 9} | fields
    return json.dumps({"kind": "join", "worker_name": name, **fields}).encode()


class Attack:
    """One attacker thread: `step(self)` over and over until the flood's deadline."""

    def __init__(self, name: str, socket: pynng.Socket, step: Callable[[Attack], None]) -> None:
        self.name = name
        self.socket = socket
        self.step = step
        self.steps = 0
        self.replies = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + FLOOD_S
        while time.monotonic() < deadline:
            # The controller closed the connection, or did not answer: go on.
            with contextlib.suppress(pynng.NNGException):
                self.step(self)
            self.steps += 1


def _request(attack: Attack, payload: bytes) -> bytes:
    attack.socket.send(payload)
    reply = attack.socket.recv()
    attack.replies += 1
    return reply


def _huge_join(attack: Attack) -> None:
    _request(attack, _join_json(HUGE_NAME, join_token="wrong"))


def _long_named_join(attack: Attack) -> None:
    _request(attack, _join_json(LONG_NAME, join_token="wrong"))


def _wrong_proof_join(attack: Attack) -> None:
    challenge = json.loads(
        _request(attack, b'{"kind":"join_hello","worker_nonce":"' + b"0" * 32 + b'"}')
    )
    if challenge.get("kind") == "join_challenge":
        nonce = challenge["controller_nonce"]
        _request(attack, _join_json(LONG_NAME, controller_nonce=nonce, proof="0" * 64))


def _bare_telemetry(attack: Attack) -> None:
    for _ in range(50):
        attack.socket.send(b'{"kind":"telemetry"}')
    time.sleep(0.001)  # pacing: the machine's cores are shared with the system under test


def _huge_telemetry(attack: Attack) -> None:
    padding = {"padding": HUGE_NAME + "x" * 150_000}  # ~1 MB, as the attack sent
    report = Telemetry(1, 1.0, 1.0, padding, (), worker_key="wrong")
    attack.socket.send(report.encode())
    time.sleep(0.025)  # pacing: 40 a second, as reported


def _attacks(cluster: Cluster, telemetry_port: int) -> list[Attack]:
    controller = f"tcp://127.0.0.1:{cluster.controller_port}"
    telemetry = f"tcp://127.0.0.1:{telemetry_port}"

    def req() -> pynng.Req0:
        return pynng.Req0(dial=controller, send_timeout=200, recv_timeout=200)

    return [
        Attack("huge-join", req(), _huge_join),
        Attack("long-named-join", req(), _long_named_join),
        Attack("wrong-proof-join", req(), _wrong_proof_join),
        Attack("bare-telemetry", pynng.Pub0(dial=telemetry), _bare_telemetry),
        Attack("huge-telemetry", pynng.Pub0(dial=telemetry), _huge_telemetry),
    ]


@dataclass
class Flood:
    cluster: Cluster
    admin: Client
    completed: dict
    log_growth: int
    attacks: dict[str, Attack]
    joined_before: dict[str, float]  # each worker's join time, as the datastore holds it
    joined_after: dict[str, float]
    jobs: dict[int, JobRecord]
    workers_after: dict[str, dict]
    telemetry_port: int


def _joined_at(cluster: Cluster) -> dict[str, float]:
    """When each worker last joined (a re-join stamps a new time)."""
    conn = database(cluster)
    try:
        return dict(conn.execute("SELECT name, joined_at FROM workers"))
    finally:
        conn.close()


def _log_size(cluster: Cluster) -> int:
    return (cluster.root / "controller.log").stat().st_size


@pytest.fixture(scope="module")
def flood(tmp_path_factory) -> Iterator[Flood]:
    cluster = start_cluster(tmp_path_factory.mktemp("floods"), workers=len(WORKERS))
    attacks: list[Attack] = []
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        announced = re.findall(r"\(telemetry (\d+), broadcast", cluster.log("controller"))
        telemetry_port = int(announced[-1])
        joined_before = _joined_at(cluster)
        log_before = _log_size(cluster)
        attacks = _attacks(cluster, telemetry_port)
        for attack in attacks:
            attack.thread.start()
        wait_until(lambda: all(a.steps > 0 for a in attacks), 5, "every attack to be under way")

        wid = admin.create_workload(filter="grayscale", workload_name="flooded")["workload_id"]
        for seed in range(IMAGES):
            assert admin.upload(wid, image_bytes(seed=seed)).status_code == 201
        completed = admin.wait_completed(wid, timeout_s=30)
        for attack in attacks:
            attack.thread.join()
        workers_after = {w["name"]: w for w in admin.get("/status").json()["workers"]}
        yield Flood(
            cluster,
            admin,
            completed,
            _log_size(cluster) - log_before,
            {attack.name: attack for attack in attacks},
            joined_before,
            _joined_at(cluster),
            job_records(cluster, wid),
            workers_after,
            telemetry_port,
        )
    finally:
        for attack in attacks:
            attack.thread.join()
            attack.socket.close()
        cluster.stop_all()


def test_the_log_stays_small(flood):
    assert flood.log_growth < LOG_GROWTH_LIMIT
    assert HUGE_NAME[:1000] not in flood.cluster.log("controller")
    assert LONG_NAME[:1000] not in flood.cluster.log("controller")


def test_every_attack_really_ran(flood):
    assert all(attack.steps >= 10 for attack in flood.attacks.values()), {
        name: attack.steps for name, attack in flood.attacks.items()
    }


def test_a_join_over_the_size_limit_is_never_answered(flood):
    assert flood.attacks["huge-join"].replies == 0


def test_the_workers_stayed_alive_and_finished_the_workload(flood):
    assert flood.joined_after == flood.joined_before  # none had to re-join ...
    assert_done_once(flood.jobs)  # ... nor lost a job by being declared dead
    assert all(flood.workers_after[name]["alive"] for name in WORKERS)
    assert flood.completed["filtered_images"] == list(range(IMAGES))
    assert flood.completed["failed_images"] == []


def test_telemetry_over_the_size_limit_does_not_get_in(flood):
    """Even with the worker's own key: a report over the limit closes its connection unread."""
    accepted = join(flood.cluster, join_token(flood.cluster), "oversized")
    assert isinstance(accepted, JoinAccepted)

    def report(cpu: float, padding: int = 0) -> bytes:
        gpu = {"padding": "x" * padding} if padding else None
        return Telemetry(
            accepted.worker_id, cpu, 1.0, gpu, (), worker_key=accepted.rpc_key
        ).encode()

    with pynng.Pub0(dial=f"tcp://127.0.0.1:{flood.telemetry_port}") as pub:

        def recorded(cpu: float) -> bool:
            pub.send(report(cpu))
            return recorded_cpu(flood.cluster, accepted.worker_id) == cpu

        wait_until(lambda: recorded(62.0), 5, "a report of the right size to be recorded")
        oversized = report(61.0, padding=200_000)
        deadline = time.monotonic() + 0.5  # under the 3 intervals after which it is dead
        while time.monotonic() < deadline:
            pub.send(oversized)
            time.sleep(0.02)
    assert recorded_cpu(flood.cluster, accepted.worker_id) == 62.0
