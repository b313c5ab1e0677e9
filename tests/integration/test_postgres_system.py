"""A whole system on the PostgreSQL datastore (DPIP_DATABASE_URL): the controller, the API
and two workers process a workload, every result right, nothing kept in a SQLite file; a
restart of the API and the controller keeps it all, and the command line reaches the same
datastore."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import ADMIN_PASSWORD, BIN, Cluster, image_bytes, running_cluster, wait_until
from tests.outcomes import wrong_results

IMAGES = 12


@pytest.fixture(scope="module")
def pg_cluster(postgres, tmp_path_factory) -> Iterator[Cluster]:
    name = f"system_{uuid.uuid4().hex}"
    url = postgres.create_database(name)
    with running_cluster(tmp_path_factory.mktemp("pg"), 2, {"DPIP_DATABASE_URL": url}) as cluster:
        yield cluster
    postgres.drop_database(name)


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
