"""A whole system on the PostgreSQL datastore (DPIP_DATABASE_URL): the controller, the API
and two workers process a workload, every result right, nothing kept in a SQLite file; a
restart of the API and the controller keeps it all, and the command line reaches the same
datastore. Long polls wake on PostgreSQL's notices, also after the API's listening
connection was cut (this system rechecks a waiting request only every 60 s, longer than
any wait, so a prompt answer can only come from a notice)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from api.db import API_SESSIONS
from datastore.postgres import SESSION_NAME
from datastore.progress_notices import CHANNEL
from foundation.defaults import WORKLOAD_WAIT_MAX_S
from tests.conftest import (
    ADMIN_PASSWORD,
    BIN,
    Cluster,
    image_bytes,
    running_cluster,
    wait_until,
)
from tests.outcomes import wrong_results

IMAGES = 12
LATER = "later"  # a tag no worker has until a test starts one with it


@pytest.fixture(scope="module")
def pg_cluster(postgres, tmp_path_factory) -> Iterator[Cluster]:
    with postgres.new_database() as url:
        env = {"DPIP_DATABASE_URL": url, "DPIP_WORKLOAD_WAIT_RECHECK_S": "60"}
        with running_cluster(tmp_path_factory.mktemp("pg"), 2, env) as cluster:
            yield cluster


def test_a_workload_runs_on_postgres_and_survives_a_restart(pg_cluster: Cluster) -> None:
    admin = pg_cluster.login("admin", ADMIN_PASSWORD)
    created = admin.post("/users", json={"username": "pia", "password": "pia-password-1"})
    assert created.status_code == 201, created.text
    pia = pg_cluster.login("pia", "pia-password-1")
    workload_id = pia.create_workload(filter="grayscale", workload_name="on-postgres")[
        "workload_id"
    ]
    originals = {}
    for seed in range(IMAGES):
        data = image_bytes(seed=seed)
        answer = pia.upload(workload_id, data)
        assert answer.status_code == 201, answer.text
        originals[answer.json()["image_id"]] = data
    done = pia.wait_completed(workload_id)
    assert done["filtered_images"] == list(range(IMAGES))
    assert wrong_results(pia, workload_id, originals, "grayscale") == []
    assert not list(pg_cluster.data_dir.glob("*.sqlite3*"))  # everything is in PostgreSQL

    pg_cluster.stop("api")
    pg_cluster.stop("controller")
    pg_cluster.start_controller()
    pg_cluster.start_api()
    assert pia.get(f"/workloads/{workload_id}").json() == done  # the token, the workload
    wait_until(
        lambda: len([w for w in admin.get("/status").json()["workers"] if w["alive"]]) == 2,
        30,
        "both workers to re-join the new controller",
    )
    assert pia.upload(workload_id, image_bytes(seed=99)).json()["image_id"] == IMAGES
    assert pia.wait_completed(workload_id)["filtered_images"] == list(range(IMAGES + 1))


def test_the_command_line_manages_users_in_the_same_datastore(pg_cluster: Cluster) -> None:
    listed = subprocess.run(
        [str(BIN / "dpip"), "user", "list", "--data-dir", str(pg_cluster.data_dir)],
        env=pg_cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "admin\tadmin" in listed.stdout.splitlines()


def listening_sessions(cluster: Cluster) -> list[int]:
    """The server pids of the API processes' sessions that listen for progress notices."""
    with psycopg.connect(cluster.env["DPIP_DATABASE_URL"], autocommit=True) as session:
        rows = session.execute(
            "SELECT pid FROM pg_stat_activity WHERE query = %s", (f"LISTEN {CHANNEL}",)
        ).fetchall()
    return [pid for (pid,) in rows]


def test_a_long_poll_wakes_on_a_notice_and_after_its_connection_was_cut(
    pg_cluster: Cluster,
) -> None:
    admin = pg_cluster.login("admin", ADMIN_PASSWORD)
    for cut in (False, True):
        workload_id = admin.create_workload(
            filter="grayscale", workload_name=f"woken-{cut}", tags=[LATER]
        )["workload_id"]
        assert admin.upload(workload_id, image_bytes()).status_code == 201
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            waiting = pool.submit(
                admin.get,
                f"/workloads/{workload_id}",
                params={"wait": WORKLOAD_WAIT_MAX_S, "seen": 0},
            )
            listeners = wait_until(
                lambda: listening_sessions(pg_cluster), 10, "the API to listen for notices"
            )
            if cut:  # notices sent meanwhile are lost: the listener must wake every waiter
                with psycopg.connect(pg_cluster.env["DPIP_DATABASE_URL"]) as session:
                    for pid in listeners:
                        session.execute("SELECT pg_terminate_backend(%s)", (pid,))
            pg_cluster.start_worker("later-worker", tags=LATER)
            try:
                answer = waiting.result(timeout=30)
            finally:
                pg_cluster.stop("later-worker")
        assert answer.json()["filtered_images"] == [0]
        assert time.monotonic() - started < WORKLOAD_WAIT_MAX_S  # woken, not timed out


def end_sessions(cluster: Cluster, application: str) -> int:
    """End every session of the cluster's database named `application`; how many there were."""
    with psycopg.connect(cluster.env["DPIP_DATABASE_URL"]) as session:
        return len(
            session.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (application,),
            ).fetchall()
        )


def test_a_controller_that_lost_its_datastore_exits_and_its_restart_finishes_the_run(
    pg_cluster: Cluster,
) -> None:
    """Its loops' state is the datastore's and their own: rather than go on half alive, the
    controller exits (1) for its supervisor to start it afresh, as after any restart."""
    admin = pg_cluster.login("admin", ADMIN_PASSWORD)
    workload_id = admin.create_workload(filter="grayscale", workload_name="outlived")["workload_id"]
    originals = {}
    for seed in range(IMAGES):
        data = image_bytes(seed=seed)
        originals[admin.upload(workload_id, data).json()["image_id"]] = data
    assert end_sessions(pg_cluster, SESSION_NAME) > 0  # the controller's
    controller = pg_cluster.processes.pop("controller")
    assert controller.wait(timeout=30) == 1  # the next telemetry's write fails its round
    assert "loop failed; stopping" in pg_cluster.log("controller")
    pg_cluster.start_controller()
    done = admin.wait_completed(workload_id)
    assert done["filtered_images"] == list(range(IMAGES))
    assert wrong_results(admin, workload_id, originals, "grayscale") == []


def test_the_api_replaces_the_sessions_the_server_dropped(pg_cluster: Cluster) -> None:
    """The API's sessions are pooled and checked as they are lent: after the server ends
    them all (as a restart would), the next requests get fresh ones, none fails."""
    admin = pg_cluster.login("admin", ADMIN_PASSWORD)
    assert {admin.get("/status").status_code for _ in range(20)} == {200}
    assert end_sessions(pg_cluster, API_SESSIONS) > 0  # the API's sessions, by their name
    assert [admin.get("/status").status_code for _ in range(20)] == [200] * 20
