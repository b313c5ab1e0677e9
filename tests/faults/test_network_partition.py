"""Workers on separate (simulated) hosts: one is cut off mid-run, then reconnected.

Three hosts on one LAN (tests/netns.py): the switch runs the controller and the API
(10.213.7.1), and each worker has a host of its own (10.213.7.11 and .12). The test process
enters the switch's namespace (its main thread only) to talk to the API. Needs root and
`ip`; skips otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    BUSY_FILTER,
    Client,
    Cluster,
    start_busy_workload,
    start_cluster,
    wait_until,
    workers_by_name,
)
from tests.netns import Network, inside, ip, simulated_network
from tests.outcomes import assert_done_once, database, job_records, running_on, wrong_results

pytestmark = pytest.mark.hosts

SUBNET = "10.213.7"
WORKERS = {"worker-1": f"{SUBNET}.11", "worker-2": f"{SUBNET}.12"}
IMAGES = 4


def declared_alive(cluster: Cluster, name: str) -> bool:
    """The controller's own verdict, as it stored it (the API's `alive` also reads telemetry
    age)."""
    conn = database(cluster)
    try:
        return bool(conn.execute("SELECT alive FROM workers WHERE name = ?", (name,)).fetchone()[0])
    finally:
        conn.close()


@dataclass
class Hosts:
    network: Network
    cluster: Cluster
    admin: Client


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Iterator[Hosts]:
    with simulated_network(f"p{os.getpid()}", SUBNET, WORKERS) as network:
        cluster = None
        try:
            with inside(network.switch):
                cluster = start_cluster(
                    tmp_path_factory.mktemp("hosts"),
                    workers=0,
                    host=network.switch_address,
                    netns=network.switch,
                )
                for name, address in WORKERS.items():
                    cluster.start_worker(
                        name, netns=network.hosts[name].namespace, advertise_host=address
                    )
                cluster.wait_workers_alive(set(WORKERS))
                admin = cluster.login("admin", ADMIN_PASSWORD)
            yield Hosts(network, cluster, admin)  # tests enter the switch to reach the API
        finally:
            if cluster is not None:
                cluster.stop_all()


def test_cut_off_worker_loses_its_jobs_to_the_other_and_rejoins_when_reconnected(hosts):
    cluster, admin = hosts.cluster, hosts.admin
    with inside(hosts.network.switch):
        cluster.wait_workers_alive(set(WORKERS))
        wid, originals = start_busy_workload(cluster, admin, "cut", IMAGES)
        hosts.network.cut("worker-1")
        try:
            # Until it is declared dead, the datastore still shows what it ran when cut off.
            held = {number for w, number in running_on(cluster, "worker-1") if w == wid}
            done = admin.wait_completed(wid, timeout_s=60)
            while_cut = workers_by_name(admin)
            records = job_records(cluster, wid)
        finally:
            hosts.network.mend("worker-1")

        assert done["filtered_images"] == list(range(IMAGES))
        assert done["failed_images"] == []
        assert while_cut["worker-1"].alive is False
        assert while_cut["worker-2"].alive is True
        assert held  # the cut landed while it held jobs (running, or prefetched for its slot)
        assert_done_once(records, taken_back=held)  # those jobs ran again, and only those ...
        assert {records[number].worker for number in held} == {"worker-2"}  # ... elsewhere

        [victim] = set(cluster.join_ids("worker-1"))
        cluster.wait_rejoined({"worker-1": len(cluster.join_ids("worker-1"))}, timeout_s=30)
        assert set(cluster.join_ids("worker-1")) == {victim}  # under its old id
        assert job_records(cluster, wid) == records  # its late result changed nothing
        [directory] = cluster.images_dir.glob(f"{wid}-*")
        assert sorted(p.name for p in directory.iterdir()) == sorted(
            f"{n}.{kind}.png" for n in range(IMAGES) for kind in ("original", "filtered")
        )
        assert wrong_results(admin, wid, originals, BUSY_FILTER) == []


def test_worker_whose_telemetry_was_lost_for_a_while_comes_back(hosts):
    """A one-way fault: worker-2's telemetry is lost, the heartbeats still reach it.

    The controller declares it dead; it must notice (the heartbeats list the workers the
    controller counts on) and re-join once its telemetry gets through again.
    """
    cluster, admin = hosts.cluster, hosts.admin
    host = hosts.network.hosts["worker-2"].namespace
    telemetry_port = re.findall(r"\(telemetry (\d+), broadcast", cluster.log("controller"))[-1]
    rule = ("-n", host, "rule", "add", "ipproto", "tcp", "dport", telemetry_port, "table", "100")
    with inside(hosts.network.switch):
        cluster.wait_workers_alive(set(WORKERS))
        joins = len(cluster.join_ids("worker-2"))
        switch = f"{hosts.network.switch_address}/32"
        ip("-n", host, "route", "add", "blackhole", switch, "table", "100")
        ip(*rule)  # only worker-2 → telemetry port goes to the black hole
        try:
            wait_until(  # the controller's verdict, not just the API's view of stale telemetry
                lambda: not declared_alive(cluster, "worker-2"),
                10,
                "the controller to declare worker-2 dead",
            )
            assert not workers_by_name(admin)["worker-2"].alive
        finally:
            ip(*[("del" if arg == "add" else arg) for arg in rule])

        cluster.wait_rejoined({"worker-2": joins}, timeout_s=15)
        assert len(set(cluster.join_ids("worker-2"))) == 1  # under its old id
