"""One real system for the whole security suite, and the users and workloads its tests attack."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count

import pytest
import rpyc
from rpyc.utils.factory import connect_channel

from protocol import JobAssignment, SubmitAnswer
from protocol.rpc import SAFE_RPYC_CONFIG, BoundedChannel, connect_proof
from tests.conftest import (
    ENGINES,
    Client,
    cluster_fixture,
    image_bytes,
    is_on_both_engines,
    live_fake_worker,
    wait_until,
)
from tests.security.helpers import NO_WORKER
from worker.config import WorkerConfig
from worker.rpc_service import JobService, start_rpc_server

UPLOAD_LIMIT = 4 * 1024 * 1024
BATCH_LIMIT = 4 * UPLOAD_LIMIT  # a batch's bytes: small enough to send past it in a test


ENV = {"DPIP_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT), "DPIP_MAX_BATCH_BYTES": str(BATCH_LIMIT)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Only the modules marked `both_engines` (their attacks reach the datastore) run on
    PostgreSQL too (tests/conftest.py); the rest (the controller's sockets, the worker's rpc
    port, slow clients, ...) on SQLite alone, sharing the SQLite system of the marked ones."""
    if "engine" in metafunc.fixturenames and not is_on_both_engines(metafunc):
        metafunc.parametrize("engine", ENGINES[:1], indirect=True)


@pytest.fixture(scope="package")
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


# Controller, API and one worker (its rpyc port is attacked), one system per engine shared by
# every module. No job of this suite ever runs (every workload is tagged `nowhere`), so the
# image store and the jobs table change only when a test changes them.
cluster = cluster_fixture("package", workers=1, env=ENV)


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
def worker_client(cluster) -> Iterator[Client]:
    """A client holding a real worker token, got by joining a fake worker over nng (kept
    alive while the module runs: a dead worker's token answers 401)."""
    with live_fake_worker(cluster, f"fake-worker-{os.getpid()}-{next(_names)}") as worker:
        yield Client(cluster.url, worker.accepted.worker_token)


@dataclass
class KeyedRpcServer:
    """A worker's rpyc server whose rpc key the test knows, and the jobs it was handed."""

    address: tuple[str, int]
    key: str
    submitted: list[JobAssignment] = field(default_factory=list)
    key_asked: threading.Event = field(default_factory=threading.Event)
    service: JobService | None = None

    def current_key(self) -> str:
        self.key_asked.set()
        return self.key

    def submit(self, jobs: tuple[JobAssignment, ...]) -> tuple[SubmitAnswer, ...]:
        self.submitted += jobs
        return (SubmitAnswer.ACCEPTED,) * len(jobs)

    def connect(
        self, key: str | None = None, service: type[rpyc.Service] = rpyc.VoidService
    ) -> rpyc.Connection:
        """Connect as the scheduler does: the key's proof first, then rpyc (as `service`)."""
        stream = rpyc.SocketStream.connect(*self.address, timeout=10)
        stream.write(connect_proof(key or self.key))
        return connect_channel(BoundedChannel(stream, 1 << 20), service, dict(SAFE_RPYC_CONFIG))


@pytest.fixture(scope="module")
def keyed_rpc_server() -> Iterator[KeyedRpcServer]:
    """The worker's real rpyc server (its JobService over its guarded server), in this
    process with a key the test knows, so attacks can get past the connection check; a
    stub in place of the job runner records what it is handed."""
    target = KeyedRpcServer(("127.0.0.1", 0), "the-test-rpc-key")
    target.service = JobService(target.current_key, target.submit)
    config = WorkerConfig("127.0.0.1", 0, "keyed", "unused-join-token")
    server = start_rpc_server(target.service, config)
    wait_until(lambda: server.active, 10, "the rpc server to listen")  # it binds, then listens
    target.address = ("127.0.0.1", server.port)
    try:
        yield target
    finally:
        server.close()
