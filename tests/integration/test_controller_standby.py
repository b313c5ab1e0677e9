"""An active controller and a standby on PostgreSQL (controller/leadership.py): the standby
binds nothing while the active one lives, takes over when it is killed mid-run (the workers,
given both addresses, re-join it and every image is done exactly once), and an active
controller whose lock session the server ended stops (exit 1) for the standby. Workers try
the controllers' addresses in turn, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest

from controller.leadership import CONTROLLER_LOCK
from tests.conftest import ADMIN_PASSWORD, Client, Cluster, free_port, image_bytes, wait_until
from tests.outcomes import assert_done_once, job_records, wrong_results
from tests.security.test_join_handshake import FakeController, squat

BATCH = 100  # images a request: queued within a moment; one batch before the kill, one after
SIZE = (256, 192)  # a few ms a job: the run lasts long enough to be cut in the middle
WORKERS = ("worker-1", "worker-2")
ACTIVE = "this controller is the active one"  # on PostgreSQL, once it holds the lock
STARTED = re.compile(r"controller [0-9a-f]{16} on ")  # its sockets bound, on either engine
STANDBY = "standby: the controller lock is held by"
TAKEOVER_BOUND_S = 10  # at 250 ms intervals: 3 silent ones, then a join


@pytest.fixture
def pg_cluster(postgres, tmp_path) -> Iterator[Cluster]:
    """A system on a fresh PostgreSQL database, nothing started; all stopped at the end."""
    with postgres.new_database() as url:
        cluster = Cluster(tmp_path, {"DPIP_DATABASE_URL": url})
        try:
            yield cluster
        finally:
            cluster.stop_all()


def start_active_and_standby(cluster: Cluster) -> int:
    """The first controller, active; then a second on a port of its own, a standby, which
    binds nothing; its port."""
    cluster.start_controller()
    wait_until(lambda: ACTIVE in cluster.log("controller"), 30, "the first to be active")
    standby_port = free_port()
    cluster.start_controller("standby", standby_port)
    wait_until(lambda: STANDBY in cluster.log("standby"), 30, "the second to wait as a standby")
    assert not listens(standby_port)
    return standby_port


def listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def end_lock_holder(cluster: Cluster) -> int:
    """End the server session that holds the controller lock; how many there were."""
    with psycopg.connect(cluster.env["DPIP_DATABASE_URL"], autocommit=True) as session:
        return len(
            session.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
                " AND (classid::bigint << 32 | objid::bigint) = %s",
                (CONTROLLER_LOCK,),
            ).fetchall()
        )


def upload_batch(client: Client, workload_id: int, first_seed: int) -> dict[int, bytes]:
    """BATCH distinct images in one request; each by its number."""
    batch = [image_bytes("PNG", SIZE, seed) for seed in range(first_seed, first_seed + BATCH)]
    files = [("data", (f"{n}.png", data, "image/png")) for n, data in enumerate(batch)]
    response = client.post(f"/workloads/{workload_id}/images", files=files)
    assert response.status_code == 201, response.text
    numbers = [image["image_id"] for image in response.json()["images"]]
    return dict(zip(numbers, batch, strict=True))


def done_count(client: Client, workload_id: int) -> int:
    return client.get(f"/workloads/{workload_id}").json()["images"]["done"]


def test_a_standby_takes_over_a_run_from_a_killed_controller(pg_cluster: Cluster) -> None:
    standby_port = start_active_and_standby(pg_cluster)
    pg_cluster.start_api()  # given both controllers' addresses, as the workers are
    for name in WORKERS:
        pg_cluster.start_worker(name)
    pg_cluster.wait_workers_alive(set(WORKERS))
    admin = pg_cluster.login("admin", ADMIN_PASSWORD)
    workload_id = admin.create_workload(filter="grayscale", workload_name="handed-over")[
        "workload_id"
    ]
    originals = upload_batch(admin, workload_id, 0)
    wait_until(lambda: done_count(admin, workload_id) >= 10, 30, "the run to be under way")
    assert not listens(standby_port)  # still a standby mid-run ...
    assert "joined" not in pg_cluster.log("standby")  # ... which no worker joined
    ids_before = {name: pg_cluster.join_ids(name) for name in WORKERS}

    killed_at = time.monotonic()
    pg_cluster.stop("controller", signal.SIGKILL)
    running = {n for n, r in job_records(pg_cluster, workload_id).items() if r.status == "running"}
    assert done_count(admin, workload_id) < BATCH  # really in the middle
    wait_until(
        lambda: all(pg_cluster.join_ids(name, "standby") for name in WORKERS),
        30,
        "both workers to join the standby",
    )
    takeover_s = time.monotonic() - killed_at
    print(f"\ntakeover: {takeover_s:.2f} s from kill -9 to both workers joined to the standby")
    assert takeover_s < TAKEOVER_BOUND_S
    pg_cluster.wait_workers_alive(set(WORKERS))
    originals |= upload_batch(admin, workload_id, BATCH)  # scheduled by the new one alone

    done = admin.wait_completed(workload_id, timeout_s=60)
    assert done["filtered_images"] == list(range(2 * BATCH))
    assert_done_once(job_records(pg_cluster, workload_id), running)
    assert wrong_results(admin, workload_id, originals, "grayscale") == []
    for name in WORKERS:  # the same workers, under their ids
        assert set(pg_cluster.join_ids(name, "standby")) == set(ids_before[name])


def test_a_controller_whose_lock_session_ended_stops_for_the_standby(pg_cluster: Cluster) -> None:
    """The server ends the active controller's lock session (a cut connection would, after
    its keepalives): the lock is the standby's at once, so the old one must not go on."""
    standby_port = start_active_and_standby(pg_cluster)
    assert end_lock_holder(pg_cluster) == 1
    active = pg_cluster.processes.pop("controller")
    assert active.wait(timeout=15) == 1  # at its next heartbeat
    assert "lock ended" in pg_cluster.log("controller")
    wait_until(lambda: ACTIVE in pg_cluster.log("standby"), 15, "the standby to take over")
    wait_until(lambda: listens(standby_port), 15, "the new active controller's port")


def test_a_standby_stops_at_sigterm_without_ever_binding(pg_cluster: Cluster) -> None:
    start_active_and_standby(pg_cluster)
    standby = pg_cluster.processes.pop("standby")
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(timeout=15) == 0  # within a wait slice of the lock (1 s)
    assert ACTIVE not in pg_cluster.log("standby")


@pytest.mark.parametrize("first", ["closed", "squatter"])
def test_a_worker_joins_through_the_next_address_when_the_first_fails(first, tmp_path) -> None:
    """Its first address is a closed port, or a process that answers but cannot prove it
    knows the join token: the worker joins the real controller, its second address, and
    sends the other nothing but a hello."""
    cluster = Cluster(tmp_path)
    squatter = FakeController(free_port(), squat) if first == "squatter" else None
    try:
        cluster.start_controller()
        wait_until(lambda: STARTED.search(cluster.log("controller")), 30, "the controller to start")
        cluster.controller_ports.insert(0, squatter.port if squatter else free_port())
        cluster.start_worker("listed")
        wait_until(
            lambda: "joined as worker" in cluster.log("listed") and cluster.join_ids("listed"),
            30,
            "the worker to join the controller, its second address",
        )
    finally:
        cluster.stop_all()
        if squatter is not None:
            squatter.close()
    if squatter is not None:  # tried first if connected by then; told nothing either way
        assert set(squatter.kinds()) <= {"join_hello"}
