"""Results and telemetry that do not carry the worker's join key change nothing."""

from __future__ import annotations

import socket
import threading

import pynng

from foundation.defaults import REFUSALS_PER_CONNECTION
from protocol import Ack, JobResult, JobResults, JoinAccepted, Telemetry, decode
from tests.conftest import ADMIN_PASSWORD, image_bytes, join, join_over, wait_until
from tests.outcomes import database
from tests.security.helpers import recorded_cpu

FORGED_CPU = 99.25
# Rounds of forged reports for workers 1-5, fewer refusals than close a connection, so the
# genuine report sent after them on the same connection is read after them.
FORGED_ROUNDS = (REFUSALS_PER_CONNECTION - 1) // 5
MARKER_CPU = 12.5  # what a genuine report carries, sent after the forgeries


def _telemetry(
    worker_id: int, cpu: float, memory: float, running: tuple[int, ...] = (), *, worker_key: str
) -> Telemetry:
    return Telemetry(
        worker_id=worker_id,
        cpu_percent=cpu,
        memory_percent=memory,
        gpu=None,
        running_job_ids=running,
        worker_key=worker_key,
    )


def test_forged_telemetry_is_ignored(cluster):
    accepted = join(cluster, (cluster.data_dir / "join_token").read_text().strip(), "forger")
    assert isinstance(accepted, JoinAccepted)
    admin = cluster.login("admin", ADMIN_PASSWORD)
    victim_names = {w["name"] for w in admin.get("/status").json()["workers"]}
    with pynng.Pub0(dial=f"tcp://127.0.0.1:{accepted.telemetry_port}") as pub:
        for _ in range(FORGED_ROUNDS):
            for worker_id in range(1, 6):
                forged = _telemetry(worker_id, FORGED_CPU, FORGED_CPU, worker_key="wrong")
                pub.send(forged.encode())
        genuine = _telemetry(accepted.worker_id, MARKER_CPU, 0.0, worker_key=accepted.rpc_key)

        def genuine_recorded() -> bool:  # sent after the forgeries, so applied after them
            pub.send(genuine.encode())
            return recorded_cpu(cluster, accepted.worker_id) == MARKER_CPU

        wait_until(genuine_recorded, 10, "the forger's own report to be recorded")
    workers = admin.get("/status").json()["workers"]
    assert {w["name"] for w in workers} == victim_names
    assert all(w["cpu"] != FORGED_CPU and w["memory"] != FORGED_CPU for w in workers)


def _job_row(cluster, workload_id: int):
    conn = database(cluster)
    try:
        return conn.execute(
            "SELECT id, status, worker_id, attempts, error FROM jobs WHERE workload_id = ?",
            (workload_id,),
        ).fetchone()
    finally:
        conn.close()


def test_only_the_workers_own_key_can_fail_its_job(cluster):
    """A fake worker takes a job (its rpc port never answers, so the job stays assigned for a
    moment); a failure report with a wrong key changes nothing, one with its key counts."""
    stop = threading.Event()
    running: list[int] = []
    cpu = [0.0]  # what its telemetry reports; a new value marks a point in the event order
    with (
        socket.socket() as silent_rpc_port,
        pynng.Req0(recv_timeout=5000) as req,
        pynng.Pub0() as pub,
    ):
        silent_rpc_port.bind(("127.0.0.1", 0))
        silent_rpc_port.listen()
        req.dial(f"tcp://127.0.0.1:{cluster.controller_port}")
        token = (cluster.data_dir / "join_token").read_text().strip()
        rpc_port = silent_rpc_port.getsockname()[1]
        accepted = join_over(req, token, "key-holder", rpc_port, ("forge",))
        assert isinstance(accepted, JoinAccepted), accepted
        pub.dial(f"tcp://127.0.0.1:{accepted.telemetry_port}")

        def stay_alive() -> None:  # genuine telemetry, so the fake worker is not declared dead
            while not stop.wait(0.1):
                report = _telemetry(
                    accepted.worker_id, cpu[0], 0.0, tuple(running), worker_key=accepted.rpc_key
                )
                pub.send(report.encode())

        threading.Thread(target=stay_alive, daemon=True).start()
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = admin.create_workload(workload_name="forged-results", tags=["forge"])["workload_id"]
        admin.upload(wid, image_bytes())
        row = wait_until(
            lambda: (r := _job_row(cluster, wid)) and r[1] == "running" and r, 5, "assignment"
        )
        job_id, _, worker_id, attempts, _ = row
        running.append(job_id)
        assert worker_id == accepted.worker_id

        for key in ("wrong", "", accepted.rpc_key[:-1]):
            forged = JobResults(worker_id, (JobResult(job_id, "failed", "forged"),), key)
            req.send(forged.encode())
            assert isinstance(decode(req.recv()), Ack)
        # A report that got in was handed on before its Ack; telemetry sent after the Acks
        # is applied after it. Once the marker is recorded, the forgeries had their chance.
        cpu[0] = MARKER_CPU
        wait_until(
            lambda: recorded_cpu(cluster, worker_id) == MARKER_CPU, 5, "the marker telemetry"
        )
        assert _job_row(cluster, wid) == (job_id, "running", worker_id, attempts, "")

        genuine = JobResults(worker_id, (JobResult(job_id, "failed", "genuine"),), accepted.rpc_key)
        req.send(genuine.encode())
        assert isinstance(decode(req.recv()), Ack)
        wait_until(lambda: _job_row(cluster, wid)[4] == "genuine", 5, "the genuine report")
        stop.set()
