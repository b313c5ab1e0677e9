"""GET /workloads/{id}?wait=S: a long poll that the controller's progress messages wake.

The cluster's API rechecks a waiting workload only every 60 s, longer than any wait, so an
answer that comes before the wait ran out can only come from a progress message.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import psycopg
import pynng
import pytest

from datastore.progress_notices import CHANNEL
from foundation.defaults import WORKLOAD_WAIT_MAX_S
from protocol import WorkloadsProgressed, decode, progress_events_address
from tests.conftest import (
    ADMIN_PASSWORD,
    Client,
    Cluster,
    cluster_fixture,
    image_bytes,
    running_cluster,
    wait_until,
)

pytestmark = pytest.mark.both_engines

LATER = "later"  # a tag no worker has until a test starts one with it


# This module's system rechecks waiting requests only every 60 s.
cluster = cluster_fixture(workers=1, env={"DPIP_WORKLOAD_WAIT_RECHECK_S": "60"})


def queued_workload(admin: Client, name: str, tags: list[str] | None = None) -> int:
    workload = admin.create_workload(filter="grayscale", workload_name=name, tags=tags or [])
    assert admin.upload(workload["workload_id"], image_bytes()).status_code == 201
    return workload["workload_id"]


def timed_get(client: Client, workload_id: int, **params) -> tuple[float, dict]:
    started = time.monotonic()
    response = client.get(f"/workloads/{workload_id}", params=params)
    assert response.status_code == 200, response.text
    return time.monotonic() - started, response.json()


def progress_subscriptions(cluster: Cluster) -> int:
    """How many API processes listen to the controller's progress events: each starts to
    with its first waiting request."""
    path = progress_events_address(cluster.data_dir).removeprefix("ipc://")
    controller = psutil.Process(cluster.processes["controller"].pid)
    sockets = [c for c in controller.net_connections(kind="unix") if c.laddr == path]
    return len(sockets) - 1  # the controller's own listening socket


def test_a_waiting_request_answers_when_the_image_is_filtered(cluster, admin):
    wid = queued_workload(admin, "wakes", tags=[LATER])
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(timed_get, admin, wid, wait=WORKLOAD_WAIT_MAX_S, seen=0)
        try:
            cluster.start_worker("later-worker", tags=LATER)
            elapsed_s, body = waiting.result(timeout=30)
        finally:
            cluster.stop("later-worker")
    assert body["filtered_images"] == [0]
    assert body["status"] == "completed"
    assert elapsed_s < WORKLOAD_WAIT_MAX_S  # woken by the message, not by the end of the wait


def test_a_wait_answers_at_once_when_more_than_seen_finished(admin):
    wid = queued_workload(admin, "finished")
    done = admin.wait_completed(wid)
    elapsed_s, body = timed_get(admin, wid, wait=WORKLOAD_WAIT_MAX_S, seen=0)
    assert body == done
    assert elapsed_s < WORKLOAD_WAIT_MAX_S / 2
    _, body = timed_get(admin, wid, wait=WORKLOAD_WAIT_MAX_S)  # completed: nothing to wait for
    assert body == done


def test_a_wait_that_runs_out_answers_the_unchanged_workload(admin):
    wid = queued_workload(admin, "stays-queued", tags=["nobody-has-this"])
    elapsed_s, body = timed_get(admin, wid, wait=0.5)
    assert elapsed_s >= 0.5
    assert body["images"] == {"total": 1, "queued": 1, "running": 0, "done": 0, "failed": 0}
    assert body["status"] != "completed"


@contextlib.contextmanager
def progress_feed(cluster, engine: str) -> Iterator[Callable[[], tuple[int, ...]]]:
    """The controller's progress announcements as the API hears them: on the ipc socket in
    the data dir (SQLite), or as PostgreSQL notices; yields the next one's workload ids."""
    if engine == "postgresql":
        with psycopg.connect(cluster.env["DPIP_DATABASE_URL"], autocommit=True) as session:
            session.execute(f"LISTEN {CHANNEL}")

            def next_notice() -> tuple[int, ...]:
                notices = session.notifies(timeout=30, stop_after=1)
                try:  # a generator left open holds the session's lock: its close would hang
                    return tuple(json.loads(next(notices).payload))
                finally:
                    notices.close()

            yield next_notice
        return
    with pynng.Sub0(recv_timeout=30_000) as events:
        events.subscribe(b"")
        events.dial(progress_events_address(cluster.data_dir), block=True)
        yield lambda: decode(events.recv(), WorkloadsProgressed).workload_ids


def test_the_controller_publishes_which_workload_progressed(cluster, admin, engine):
    with progress_feed(cluster, engine) as next_announcement:
        wid = queued_workload(admin, "published")
        seen: set[int] = set()
        while wid not in seen:
            seen.update(next_announcement())
    assert admin.wait_completed(wid)["filtered_images"] == [0]


@pytest.mark.parametrize("wait", ["soon", "-1", "8.5", "nan", "inf", ""])
def test_a_bad_wait_is_refused(admin, wait):
    wid = queued_workload(admin, f"bad-wait-{wait}", tags=["nobody-has-this"])
    response = admin.get(f"/workloads/{wid}", params={"wait": wait})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_field"
    assert "wait" in response.json()["message"]


@pytest.mark.parametrize("seen", ["-1", "many", "1.5"])
def test_a_bad_seen_is_refused(admin, seen):
    wid = queued_workload(admin, f"bad-seen-{seen}", tags=["nobody-has-this"])
    response = admin.get(f"/workloads/{wid}", params={"wait": 1, "seen": seen})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_field"


def test_nobody_waits_on_another_users_workload(cluster, admin):
    response = admin.post("/users", json={"username": "mallory", "password": "mallory-secret"})
    assert response.status_code == 201
    mallory = cluster.login("mallory", "mallory-secret")
    wid = queued_workload(admin, "private", tags=["nobody-has-this"])
    started = time.monotonic()
    response = mallory.get(f"/workloads/{wid}", params={"wait": WORKLOAD_WAIT_MAX_S})
    assert response.status_code == 404
    assert time.monotonic() - started < WORKLOAD_WAIT_MAX_S  # refused before any wait


def test_stopping_the_api_answers_a_waiting_request_at_once(tmp_path):
    with running_cluster(tmp_path, workers=0) as stopping:
        admin = stopping.login("admin", ADMIN_PASSWORD)
        wid = queued_workload(admin, "never-filtered")
        assert progress_subscriptions(stopping) == 0  # no request waited here yet
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(timed_get, admin, wid, wait=WORKLOAD_WAIT_MAX_S)
            wait_until(lambda: progress_subscriptions(stopping), 10, "the request to wait")
            api = stopping.processes["api"]
            stopping.stop("api")
            elapsed_s, body = waiting.result(timeout=30)
    assert api.returncode == 0
    assert body["images"]["queued"] == 1  # the unchanged workload, answered ...
    assert elapsed_s < WORKLOAD_WAIT_MAX_S  # ... before its wait ran out


def test_waits_are_still_woken_after_the_controller_restarts(tmp_path):
    env = {"DPIP_WORKLOAD_WAIT_RECHECK_S": "60"}
    with running_cluster(tmp_path, workers=1, env=env) as restarted:
        admin = restarted.login("admin", ADMIN_PASSWORD)
        before = queued_workload(admin, "before")
        assert admin.wait_completed(before)["images"]["done"] == 1  # the API has subscribed
        restarted.stop("controller")
        restarted.start_controller()  # binds the same ipc path; the API redials it
        restarted.wait_workers_alive({"worker-1"})
        after = queued_workload(admin, "after", tags=[LATER])
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(timed_get, admin, after, wait=WORKLOAD_WAIT_MAX_S, seen=0)
            restarted.start_worker("later-worker", tags=LATER)
            elapsed_s, body = waiting.result(timeout=30)
    assert body["filtered_images"] == [0]
    assert elapsed_s < WORKLOAD_WAIT_MAX_S  # woken by the new controller's message
