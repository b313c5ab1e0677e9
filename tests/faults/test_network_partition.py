"""Workers on separate (simulated) hosts: one is cut off mid-run, then reconnected.

Three network namespaces made by the test: a hub (controller and API, on a bridge at
10.213.7.1/24) and one per worker (10.213.7.11 and .12), each joined to the hub's bridge
by a veth pair. The veth ends are created directly inside the namespaces and the addresses
exist only there, so no traffic ever reaches the machine's own network. The test process
enters the hub namespace (its main thread only) to talk to the API. Needs root and `ip`;
skips otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
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
from tests.outcomes import assert_done_once, database, job_records, running_on, wrong_results

pytestmark = pytest.mark.hosts

SUBNET = "10.213.7"
HUB_ADDRESS = f"{SUBNET}.1"
WORKERS = {"worker-1": f"{SUBNET}.11", "worker-2": f"{SUBNET}.12"}
CLONE_NEWNET = 0x40000000
IMAGES = 4


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass(frozen=True)
class Network:
    hub: str
    hosts: dict[str, str]  # worker name → its namespace
    links: dict[str, str]  # worker name → its veth end, inside its namespace


def build_network(tag: str) -> Network:
    hub = f"dpip-hub-{tag}"
    network = Network(hub, {}, {})
    ip("netns", "add", hub)
    ip("-n", hub, "link", "set", "lo", "up")
    ip("-n", hub, "link", "add", "br0", "type", "bridge")
    ip("-n", hub, "addr", "add", f"{HUB_ADDRESS}/24", "dev", "br0")
    ip("-n", hub, "link", "set", "br0", "up")
    for index, (name, address) in enumerate(WORKERS.items(), start=1):
        host, hub_end, link = f"dpip-w{index}-{tag}", f"hub{index}", f"eth{index}"
        ip("netns", "add", host)
        network.hosts[name] = host
        network.links[name] = link
        ip(
            "link",
            "add",
            hub_end,
            "netns",
            hub,
            "type",
            "veth",
            "peer",
            "name",
            link,
            "netns",
            host,
        )
        ip("-n", hub, "link", "set", hub_end, "master", "br0", "up")
        ip("-n", host, "link", "set", "lo", "up")
        ip("-n", host, "addr", "add", f"{address}/24", "dev", link)
        ip("-n", host, "link", "set", link, "up")
    return network


def remove_network(tag: str) -> None:
    for name in (f"dpip-hub-{tag}", f"dpip-w1-{tag}", f"dpip-w2-{tag}"):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run this thread (and the processes it starts) in a network namespace meanwhile."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")
    finally:
        os.close(home)
        os.close(target)


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
    if shutil.which("ip") is None:
        pytest.skip("'ip' (iproute2) is missing: cannot simulate separate hosts")
    tag = str(os.getpid())
    try:
        network = build_network(tag)
    except subprocess.CalledProcessError as e:
        remove_network(tag)
        pytest.skip(f"cannot create network namespaces and veth pairs here: {e.stderr.strip()}")
    cluster = None
    try:
        with inside(network.hub):
            cluster = start_cluster(
                tmp_path_factory.mktemp("hosts"), workers=0, host=HUB_ADDRESS, netns=network.hub
            )
            for name, address in WORKERS.items():
                cluster.start_worker(name, netns=network.hosts[name], advertise_host=address)
            cluster.wait_workers_alive(set(WORKERS))
            admin = cluster.login("admin", ADMIN_PASSWORD)
        yield Hosts(network, cluster, admin)  # tests enter the hub themselves to reach the API
    finally:
        if cluster is not None:
            cluster.stop_all()
        remove_network(tag)


def test_cut_off_worker_loses_its_jobs_to_the_other_and_rejoins_when_reconnected(hosts):
    cluster, admin = hosts.cluster, hosts.admin
    with inside(hosts.network.hub):
        cluster.wait_workers_alive(set(WORKERS))
        wid, originals = start_busy_workload(cluster, admin, "cut", IMAGES)
        host, link = hosts.network.hosts["worker-1"], hosts.network.links["worker-1"]
        ip("-n", host, "link", "set", link, "down")
        try:
            # Until it is declared dead, the datastore still shows what it ran when cut off.
            held = {number for w, number in running_on(cluster, "worker-1") if w == wid}
            done = admin.wait_completed(wid, timeout_s=60)
            while_cut = workers_by_name(admin)
            records = job_records(cluster, wid)
        finally:
            ip("-n", host, "link", "set", link, "up")

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
    host = hosts.network.hosts["worker-2"]
    telemetry_port = re.findall(r"\(telemetry (\d+), broadcast", cluster.log("controller"))[-1]
    rule = ("-n", host, "rule", "add", "ipproto", "tcp", "dport", telemetry_port, "table", "100")
    with inside(hosts.network.hub):
        cluster.wait_workers_alive(set(WORKERS))
        joins = len(cluster.join_ids("worker-2"))
        ip("-n", host, "route", "add", "blackhole", f"{HUB_ADDRESS}/32", "table", "100")
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
