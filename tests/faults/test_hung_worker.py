"""A worker that hangs (SIGSTOP) mid-job loses its jobs to the others; woken, it adds nothing.

One scenario for the module (a cluster costs seconds to start): worker-1 is stopped, its
whole process group, while it filters an image. Its jobs must finish on worker-2 while it is
stopped. Then worker-1 is woken (SIGCONT), finishes its stale job and uploads it late: that
upload must be turned away, leaving exactly one right result per image, and worker-1 must
re-join, once.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest

from client import Worker
from tests.conftest import (
    ADMIN_PASSWORD,
    BUSY_FILTER,
    TELEMETRY_INTERVAL_MS,
    Client,
    Cluster,
    start_busy_workload,
    start_cluster,
    wait_until,
    workers_by_name,
)
from tests.outcomes import (
    JobRecord,
    assert_done_once,
    database,
    job_records,
    running_on,
    wrong_results,
)

IMAGES = 4
# A re-join storm repeats at least once per dead-after period (3 telemetry intervals):
# watching 4 of them after the first re-join would see it.
STORM_WINDOW_S = 4 * 3 * TELEMETRY_INTERVAL_MS / 1000


def eventually(condition, timeout_s: float) -> object:
    """Like wait_until, but answers None on timeout, for the tests to judge."""
    try:
        return wait_until(condition, timeout_s, "a scenario step")
    except TimeoutError:
        return None


def worker_id(cluster: Cluster, name: str) -> int:
    [the_id] = set(cluster.join_ids(name))
    return the_id


def last_seen(cluster: Cluster, name: str) -> float:
    """When the controller last recorded telemetry from the worker (time.time())."""
    conn = database(cluster)
    try:
        return conn.execute("SELECT last_seen FROM workers WHERE name = ?", (name,)).fetchone()[0]
    finally:
        conn.close()


@dataclass
class Scenario:
    cluster: Cluster
    admin: Client
    workload_id: int
    originals: dict[int, bytes]
    held: set[int]  # the image numbers worker-1 held (ran or prefetched) when it was stopped
    stopped_at: float  # time.time()
    completed_while_stopped: dict | None  # the workload, if it completed while worker-1 hung
    jobs_while_stopped: dict[int, JobRecord]  # the datastore's jobs, just before waking it
    status_while_stopped: dict[str, Worker]  # /status workers, just before waking worker-1
    late_upload_discarded: bool
    joins_before_waking: int  # how many times worker-1 joined before SIGCONT


def late_work_refused(worker_log: str) -> bool:
    """Whether the woken worker's late work was turned away, one way or the other: a batch
    it was running (or took from its prefetch on waking) had its upload refused, 401
    `membership_ended`, since its token died when it was declared dead; or it re-joined
    first, and dropped the jobs it still held as "discarded" (which of the two comes first
    depends on where the SIGSTOP landed and on the machine's load)."""
    return (
        "worker token died with its membership" in worker_log
        or "taken back when the worker joined anew" in worker_log
    )


@pytest.fixture(scope="module")
def hung(tmp_path_factory):
    cluster = start_cluster(tmp_path_factory.mktemp("hung"))
    stopped = None
    try:
        admin = cluster.login("admin", ADMIN_PASSWORD)
        wid, originals = start_busy_workload(cluster, admin, "hung", IMAGES)
        stopped = cluster.processes["worker-1"]
        os.killpg(stopped.pid, signal.SIGSTOP)  # the worker and its pool processes
        stopped_at = time.time()
        # Every job worker-1 held while it hung: those it had at the stop, and any the
        # scheduler handed it before declaring it dead (a send to a stopped process lands
        # in its socket); each held for seconds, so polling sees it.
        held = {number for w, number in running_on(cluster, "worker-1") if w == wid}

        def completed_or_worker_2_dead():
            held.update(number for w, number in running_on(cluster, "worker-1") if w == wid)
            body = admin.get(f"/workloads/{wid}").json()
            if body["status"] == "completed":
                return body
            return not workers_by_name(admin)["worker-2"].alive  # never, if all is well

        outcome = eventually(completed_or_worker_2_dead, 60)
        completed = outcome if isinstance(outcome, dict) else None
        jobs_while_stopped = job_records(cluster, wid)
        status_while_stopped = workers_by_name(admin)

        joins_before_waking = len(cluster.join_ids("worker-1"))
        os.killpg(stopped.pid, signal.SIGCONT)
        stopped = None
        discarded = eventually(lambda: late_work_refused(cluster.log("worker-1")), 30)
        yield Scenario(
            cluster,
            admin,
            wid,
            originals,
            held,
            stopped_at,
            completed,
            jobs_while_stopped,
            status_while_stopped,
            bool(discarded),
            joins_before_waking,
        )
    finally:
        if stopped is not None:
            os.killpg(stopped.pid, signal.SIGCONT)  # a stopped process would not see SIGTERM
        cluster.stop_all()


def test_hung_worker_is_declared_dead_and_gets_no_new_job(hung):
    assert hung.status_while_stopped["worker-1"].alive is False
    assert hung.held  # the stop landed while it held jobs (running, or prefetched for its slot)
    handed_out_since = {
        number: record.worker
        for number, record in hung.jobs_while_stopped.items()
        if record.started_at > hung.stopped_at
    }
    assert set(handed_out_since.values()) == {"worker-2"}, handed_out_since


def test_jobs_of_the_hung_worker_finish_on_the_other_worker_while_it_is_stopped(hung):
    assert hung.completed_while_stopped is not None
    assert hung.completed_while_stopped["filtered_images"] == list(range(IMAGES))
    assert hung.completed_while_stopped["failed_images"] == []
    assert_done_once(hung.jobs_while_stopped, taken_back=hung.held)
    assert {hung.jobs_while_stopped[number].worker for number in hung.held} == {"worker-2"}


def test_late_upload_of_the_woken_worker_creates_no_duplicate(hung):
    assert hung.late_upload_discarded
    hung.admin.wait_completed(hung.workload_id, timeout_s=30)
    assert late_work_refused(hung.cluster.log("worker-1"))
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
    assert job_records(hung.cluster, hung.workload_id) == hung.jobs_while_stopped  # unmoved
    [directory] = hung.cluster.images_dir.glob(f"{hung.workload_id}-*")
    names = sorted(p.name for p in directory.iterdir())  # temp files are hidden: .upload-*
    expected = sorted(f"{n}.{kind}.png" for n in range(IMAGES) for kind in ("original", "filtered"))
    assert names == expected
    assert wrong_results(hung.admin, hung.workload_id, hung.originals, BUSY_FILTER) == []


def test_woken_worker_rejoins(hung):
    hung.cluster.wait_rejoined({"worker-1": hung.joins_before_waking}, timeout_s=15)
    assert len(set(hung.cluster.join_ids("worker-1"))) == 1  # under its old id


def test_woken_worker_rejoins_once(hung):
    """Once, and then stays: its own telemetry, recorded over a window after the re-join,
    marks the time watched."""
    cluster = hung.cluster
    cluster.wait_rejoined({"worker-1": hung.joins_before_waking}, timeout_s=15)
    watched_until = time.time() + STORM_WINDOW_S
    wait_until(
        lambda: last_seen(cluster, "worker-1") > watched_until,
        STORM_WINDOW_S + 10,
        "worker-1's telemetry past the watched window",
    )
    assert len(cluster.join_ids("worker-1")) == hung.joins_before_waking + 1


def test_the_healthy_worker_stayed_alive(hung):
    assert hung.status_while_stopped["worker-2"].alive is True
    hung.cluster.wait_workers_alive({"worker-2"}, timeout_s=5)
