"""A worker that hangs (SIGSTOP) mid-job loses its jobs to the others; woken, it adds nothing.

One scenario for the module (a cluster costs seconds to start): worker-1 is stopped, its
whole process group, while it blurs an image. Its jobs must finish on worker-2 while it is
stopped. Then worker-1 is woken (SIGCONT), finishes its stale job and uploads it late: that
upload must be turned away, leaving exactly one result per image, and worker-1 must re-join.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    Client,
    Cluster,
    start_busy_workload,
    start_cluster,
    wait_until,
    workers_by_name,
)

IMAGES = 4


def eventually(condition, timeout_s: float) -> object:
    """Like wait_until, but answers None on timeout, for the tests to judge."""
    try:
        return wait_until(condition, timeout_s, "a scenario step")
    except TimeoutError:
        return None


def worker_id(cluster: Cluster, name: str) -> int:
    [the_id] = set(cluster.join_ids(name))
    return the_id


@dataclass
class Scenario:
    cluster: Cluster
    admin: Client
    workload_id: int
    completed_while_stopped: dict | None  # the workload, if it completed while worker-1 hung
    status_while_stopped: dict[str, dict]  # /status workers, just before waking worker-1
    controller_log_while_stopped: str
    late_upload_discarded: bool
    joins_before_waking: int  # how many times worker-1 joined before SIGCONT


@pytest.fixture(scope="module")
def hung(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp("hung"))
    stopped = None
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid = start_busy_workload(admin, "hung", IMAGES)
        stopped = cluster.processes["worker-1"]
        os.killpg(stopped.pid, signal.SIGSTOP)  # the worker and its pool processes
        log_at_stop = len(cluster.log("controller"))

        def completed_or_worker_2_dead():
            body = admin.get(f"/workloads/{wid}").json()
            if body["status"] == "completed":
                return body
            return not workers_by_name(admin)["worker-2"]["alive"]  # never, if all is well

        outcome = eventually(completed_or_worker_2_dead, 60)
        completed = outcome if isinstance(outcome, dict) else None
        status_while_stopped = workers_by_name(admin)
        controller_log_while_stopped = cluster.log("controller")[log_at_stop:]

        joins_before_waking = len(cluster.join_ids("worker-1"))
        os.killpg(stopped.pid, signal.SIGCONT)
        stopped = None
        discarded = eventually(lambda: "discarded" in cluster.log("worker-1"), 30)
        yield Scenario(
            cluster,
            admin,
            wid,
            completed,
            status_while_stopped,
            controller_log_while_stopped,
            bool(discarded),
            joins_before_waking,
        )
    finally:
        if stopped is not None:
            os.killpg(stopped.pid, signal.SIGCONT)  # a stopped process would not see SIGTERM
        cluster.stop_all()


def test_hung_worker_is_declared_dead_and_gets_no_new_job(hung):
    assert hung.status_while_stopped["worker-1"]["alive"] is False
    victim = worker_id(hung.cluster, "worker-1")
    released = f"worker {victim}: 1 job(s) back in the queue (worker died while running the job)"
    assert released in hung.controller_log_while_stopped  # the stop landed mid-job
    assert f"worker {victim} did not take job" not in hung.controller_log_while_stopped


def test_jobs_of_the_hung_worker_finish_on_the_other_worker_while_it_is_stopped(hung):
    assert hung.completed_while_stopped is not None
    assert hung.completed_while_stopped["filtered_images"] == list(range(IMAGES))
    assert hung.completed_while_stopped["failed_images"] == []


def test_late_upload_of_the_woken_worker_creates_no_duplicate(hung):
    assert hung.late_upload_discarded
    hung.admin.wait_completed(hung.workload_id, timeout_s=30)
    # Its token died when it was declared dead: the upload got 401 `membership_ended`.
    assert "worker token died with its membership" in hung.cluster.log("worker-1")
    body = hung.admin.get(f"/workloads/{hung.workload_id}").json()
    assert body["filtered_images"] == list(range(IMAGES))
    assert body["failed_images"] == []
    assert body["images"] == {
        "total": IMAGES,
        "queued": 0,
        "running": 0,
        "done": IMAGES,
        "failed": 0,
    }
    [directory] = hung.cluster.images_dir.glob(f"{hung.workload_id}-*")
    names = sorted(p.name for p in directory.iterdir())  # temp files are hidden: .upload-*
    expected = sorted(f"{n}.{kind}.png" for n in range(IMAGES) for kind in ("original", "filtered"))
    assert names == expected


def test_woken_worker_rejoins(hung):
    hung.cluster.wait_rejoined({"worker-1": hung.joins_before_waking}, timeout_s=15)
    assert len(set(hung.cluster.join_ids("worker-1"))) == 1  # under its old id


def test_woken_worker_rejoins_once(hung):
    hung.cluster.wait_rejoined({"worker-1": hung.joins_before_waking}, timeout_s=15)
    assert len(hung.cluster.join_ids("worker-1")) - hung.joins_before_waking <= 2


def test_the_healthy_worker_stayed_alive(hung):
    assert hung.status_while_stopped["worker-2"]["alive"] is True
    hung.cluster.wait_workers_alive({"worker-2"}, timeout_s=5)
