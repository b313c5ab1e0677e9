"""One real system for the whole security suite, and the users and workloads its tests attack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import pytest

from tests.conftest import Client, image_bytes, join, running_cluster
from tests.security.helpers import NO_WORKER, join_token

UPLOAD_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="package")
def cluster(tmp_path_factory) -> Iterator:
    """Controller, API and one worker (its rpyc port is attacked); shared by every module.

    No job of this suite ever runs (every workload is tagged `nowhere`), so the image store
    and the jobs table change only when a test changes them.
    """
    env = {"DPIP_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    with running_cluster(tmp_path_factory.mktemp("security-cluster"), workers=1, env=env) as c:
        yield c


@dataclass
class Actor:
    """A user with a logged-in client and one workload holding image 0 (a PNG)."""

    name: str
    password: str
    client: Client
    workload_id: int


_names = count(1)


def create_actor(cluster, admin: Client, prefix: str) -> Actor:
    name = f"{prefix}{next(_names)}-{os.getpid()}"
    password = f"pw-{name}-secret"
    response = admin.post("/users", json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    client = cluster.login(name, password)
    workload = client.create_workload(workload_name=f"{name}-photos", tags=NO_WORKER)
    assert client.upload(workload["workload_id"], image_bytes("PNG")).status_code == 201
    return Actor(name, password, client, workload["workload_id"])


@pytest.fixture(scope="module")
def alice(cluster, admin) -> Actor:
    return create_actor(cluster, admin, "alice")


@pytest.fixture(scope="module")
def bob(cluster, admin) -> Actor:
    return create_actor(cluster, admin, "bob")


@pytest.fixture(scope="module")
def worker_client(cluster) -> Client:
    """A client holding a real worker token, got by joining a fake worker over nng."""
    accepted = join(cluster, join_token(cluster), f"fake-worker-{os.getpid()}-{next(_names)}")
    assert accepted.worker_token
    return Client(cluster.url, accepted.worker_token)
