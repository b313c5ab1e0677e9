"""Fixtures that run the real system: controller, API and workers as processes on loopback."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pynng
import pytest
import requests
from PIL import Image

from client import Client as ApiClient
from client import RetryPolicy, WaitTimedOut, Worker
from protocol import (
    JoinAccepted,
    JoinChallenge,
    JoinHello,
    JoinProofs,
    JoinRequest,
    Message,
    Telemetry,
    decode,
    new_nonce,
)
from tests.netns import in_namespace
from tests.outcomes import running_on
from tests.postgres_server import PostgresServer, postgres_bin_dir
from tests.seaweedfs_server import S3_BUCKET, SeaweedServer, require_weed

ADMIN_PASSWORD = "admin-password-for-tests"
TELEMETRY_INTERVAL_MS = 250
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    """Poll `condition` until it returns something truthy (tests only; bounded in time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


class Client:
    """A logged-in user of the API: DPIP's own client (`api`) for the steps of a scenario,
    and raw requests (`get`, `post`, ...) for tests of the API's answers themselves, which
    the client would turn into exceptions."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.session = requests.Session()
        self.api = ApiClient(url, token, retry=RetryPolicy(attempts=1))  # a test sees each failure

    @property
    def token(self) -> str | None:
        return self.api.token

    @token.setter
    def token(self, token: str | None) -> None:
        self.api.token = token

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))  # the caller's dict stays as it was
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.session.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_workload(self, **fields) -> dict:
        response = self.post("/workloads", json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, workload_id: int, data: bytes, name: str = "image") -> requests.Response:
        return self.post("/images", data={"workload_id": workload_id}, files={"data": (name, data)})

    def wait_completed(self, workload_id: int, timeout_s: float = 60) -> dict:
        """Wait on the API's long poll (the client's `wait`); answer the workload's JSON."""
        try:
            self.api.wait(workload_id, timeout=timeout_s)
        except WaitTimedOut as e:
            raise TimeoutError(f"workload {workload_id} not completed in {timeout_s}s") from e
        return self.get(f"/workloads/{workload_id}").json()


class Cluster:
    """A DPIP system in a temp dir: start and stop its parts one by one."""

    def __init__(
        self,
        root: Path,
        env_overrides: dict[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        netns: str | None = None,
        url: str | None = None,
        telemetry_interval_ms: int = TELEMETRY_INTERVAL_MS,
    ) -> None:
        """`host`: the address the controller and the API bind to and workers dial;
        `netns`: the network namespace to run the controller and the API in (`ip netns exec`);
        `url`: where clients and workers reach the API (default: the API's own address);
        `telemetry_interval_ms`: the controller's (a worker silent for 3 is dead).
        """
        self.root = root
        self.data_dir = root / "data"
        self.images_dir = root / "images"
        self.host = host
        self.netns = netns
        self.api_port = free_port()
        self.controller_port = free_port()
        self.controller_ports = [self.controller_port]  # the API and workers dial each in turn
        self.url = url or f"http://{host}:{self.api_port}"
        self.telemetry_interval_ms = telemetry_interval_ms
        self.env = {
            **os.environ,
            "DPIP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DPIP_LOG_LEVEL": "INFO",
            **(env_overrides or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        netns: str | None = None,
    ) -> None:
        if netns:
            argv = in_namespace(netns, argv)
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env or self.env,
            start_new_session=True,  # its own process group, killed as a whole
        )
        log.close()

    def start_controller(self, name: str = "controller", port: int | None = None) -> None:
        """`port`: another controller's (on PostgreSQL a standby while the first lives),
        which the API and the workers started after it dial too, after the first."""
        port = port or self.controller_port
        if port not in self.controller_ports:
            self.controller_ports.append(port)
        self._spawn(
            name,
            [
                str(BIN / "dpip"),
                "controller",
                "--host",
                self.host,
                "--port",
                str(port),
                "--api-url",
                self.url,
                "--data-dir",
                str(self.data_dir),
                "--telemetry-interval-ms",
                str(self.telemetry_interval_ms),
            ],
            netns=self.netns,
        )

    def start_api(
        self,
        name: str = "api",
        *,
        host: str | None = None,
        netns: str | None = None,
        processes: int | None = None,
    ) -> str:
        """Start an API process and wait until it answers; return its own URL. An API
        `name`d otherwise runs on another (simulated) host, `host` in `netns`, with a data dir
        of its own, sharing the images dir (and the datastore, given by URL in the env).
        `processes`: its server processes (default: `dpip api`'s)."""
        host, netns = host or self.host, netns or self.netns
        data_dir = self.data_dir if name == "api" else self.root / name / "data"
        processes_option = [] if processes is None else ["--processes", str(processes)]
        self._spawn(
            name,
            [
                str(BIN / "dpip"),
                "api",
                "--host",
                host,
                "--port",
                str(self.api_port),
                "--controller",
                self.controller_addresses,
                "--data-dir",
                str(data_dir),
                "--images-dir",
                str(self.images_dir),
                *processes_option,
            ],
            netns=netns,
        )
        url = f"http://{host}:{self.api_port}"
        wait_until(lambda: self._api_answers(url), 30, f"the API at {url} to answer")
        return url

    def start_worker(
        self,
        name: str,
        tags: str = "",
        concurrency: int = 1,
        join_token: str | None = None,
        *,
        netns: str | None = None,
        advertise_host: str | None = None,
        controller_port: int | None = None,
    ) -> None:
        """`controller_port`: dial that port instead of the controller's (a test's relay)."""
        env = dict(self.env)
        if join_token is not None:
            env["DPIP_JOIN_TOKEN"] = join_token
        argv = [
            str(BIN / "worker"),
            "--controller",
            f"{self.host}:{controller_port}" if controller_port else self.controller_addresses,
            "--worker-name",
            name,
            "--concurrency",
            str(concurrency),
            "--join-token-file",
            str(self.data_dir / "join_token"),
        ]
        if tags:
            argv += ["--tags", tags]
        if advertise_host:
            argv += ["--advertise-host", advertise_host]
        self._spawn(name, argv, env, netns)

    @property
    def controller_addresses(self) -> str:
        """What the API and the workers are given: each controller's HOST:PORT, in turn."""
        return ",".join(f"{self.host}:{port}" for port in self.controller_ports)

    def _api_answers(self, url: str) -> bool:
        try:
            return requests.get(url + "/status", timeout=1).status_code == 401
        except requests.ConnectionError:
            return False

    def wait_workers_alive(self, names: set[str], timeout_s: float = 30) -> None:
        self._wait_alive_and(names, lambda: True, f"workers {sorted(names)} to be alive", timeout_s)

    def join_ids(self, name: str, controller: str = "controller") -> list[int]:
        """The worker ids `name` joined under, one per join, from `controller`'s log."""
        pattern = rf"worker (\d+) \({re.escape(name)}\) joined"
        return [int(i) for i in re.findall(pattern, self.log(controller))]

    def wait_rejoined(self, joins_before: dict[str, int], timeout_s: float = 30) -> None:
        """Wait until each named worker joined again since and the API shows it alive.

        The datastore marks a worker alive when its join is stored; the scheduler thread logs
        the join a moment later, so "alive" alone does not mean the log has it yet.
        """

        def rejoined() -> bool:
            return all(len(self.join_ids(name)) > joins for name, joins in joins_before.items())

        what = f"{sorted(joins_before)} to re-join"
        self._wait_alive_and(set(joins_before), rejoined, what, timeout_s)

    def _wait_alive_and(
        self, names: set[str], condition: Callable[[], bool], what: str, timeout_s: float
    ) -> None:
        """Wait until the API shows every one of `names` alive and `condition` holds."""
        admin = self.login("admin", ADMIN_PASSWORD)

        def met() -> bool:
            workers = admin.get("/status").json()["workers"]
            return names <= {w["name"] for w in workers if w["alive"]} and condition()

        wait_until(met, timeout_s, what)

    def login(self, username: str, password: str) -> Client:
        client = Client(self.url)
        client.api.login(username, password)
        return client

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        self.stop_together([name], sig, timeout_s)

    def stop_together(
        self, names: list[str], sig: int = signal.SIGTERM, timeout_s: float = 20
    ) -> None:
        """Signal each of `names`, then wait for them all (killed after `timeout_s`): many
        processes stop in the time of the slowest, not in the sum of their times."""
        processes = [self.processes.pop(name) for name in names]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + timeout_s
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        """The workers first, together (each may still deliver its running jobs' results),
        then the rest one by one, the controller last."""
        worker = str(BIN / "worker")
        self.stop_together([name for name, p in self.processes.items() if worker in p.args])
        for name in reversed(list(self.processes)):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_cluster(
    root: Path, workers: int = 2, env: dict[str, str] | None = None, **cluster_options
) -> Cluster:
    """Start a controller, an API and `workers` workers; `cluster_options` go to `Cluster`.

    If any part fails to come up, everything already started is stopped before the error
    reaches the test (which never got a cluster to stop).
    """
    cluster = Cluster(root, env, **cluster_options)
    try:
        cluster.start_controller()
        cluster.start_api()
        names = {f"worker-{i}" for i in range(1, workers + 1)}
        for name in sorted(names):
            cluster.start_worker(name)
        if names:
            cluster.wait_workers_alive(names)
    except BaseException:
        cluster.stop_all()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(
    root: Path, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """`start_cluster` for a `with` block: everything it started is stopped at its end."""
    cluster = start_cluster(root, workers, env)
    try:
        yield cluster
    finally:
        cluster.stop_all()


def cluster_fixture(
    scope: str = "module", workers: int = 2, env: dict[str, str] | None = None
) -> Callable:
    """A `cluster` fixture: a running system of `workers` workers (with `env` for every
    part), shared by the tests of its `scope` and stopped after them. A conftest or a module
    that needs another system assigns its own: `cluster = cluster_fixture(workers=1)`."""

    @pytest.fixture(scope=scope, name="cluster")
    def running_system(
        engine: str, image_store: str, request: pytest.FixtureRequest, tmp_path_factory
    ) -> Iterator[Cluster]:
        with (
            datastore_env(engine, request) as engine_env,
            running_cluster(
                tmp_path_factory.mktemp(f"cluster-{engine}"),
                workers,
                {**(env or {}), **engine_env, **image_store_env(image_store, request)},
            ) as running,
        ):
            yield running

    return running_system


cluster = cluster_fixture(env={"DPIP_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024)})


@pytest.fixture(scope="module")
def admin(cluster) -> Client:
    return cluster.login("admin", ADMIN_PASSWORD)


_user_counter = iter(range(1, 1_000_000))


@pytest.fixture
def make_user(cluster, admin) -> Callable[[], Client]:
    """Create a fresh user and return a client logged in as that user."""

    def make() -> Client:
        name = f"user{next(_user_counter)}-{os.getpid()}"
        password = f"pw-{name}-secret"
        admin.api.create_user(name, password)
        client = cluster.login(name, password)
        client.username = name
        client.password = password
        return client

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session, started when a test first asks for it."""
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    with PostgresServer(free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedServer]:
    """One S3 server (SeaweedFS) with the bucket S3_BUCKET for the whole session, started
    when a test first asks for it; each test keeps its images under a prefix of its own."""
    require_weed()
    with SeaweedServer(free_port) as server:
        server.client().create_bucket(Bucket=S3_BUCKET)
        yield server


ENGINES = ("sqlite", "postgresql")  # the datastore's engines, for tests that run on each


@contextlib.contextmanager
def datastore_env(engine: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment that puts a test system on `engine`: nothing for SQLite (the
    default), a fresh PostgreSQL database's URL (dropped after the block) otherwise."""
    if engine == "sqlite":
        yield {}
        return
    with request.getfixturevalue("postgres").new_database() as url:
        yield {"DPIP_DATABASE_URL": url}


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> str:
    """The datastore engine of a `cluster_fixture` system: SQLite, or each engine in turn
    for the tests of a module marked `both_engines`."""
    return getattr(request, "param", ENGINES[0])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module marked `both_engines` runs its tests on a system of each engine (its
    `engine` fixture's scope decides how many tests share one)."""
    if "engine" in metafunc.fixturenames and is_on_both_engines(metafunc):
        metafunc.parametrize("engine", ENGINES, indirect=True)


def is_on_both_engines(metafunc: pytest.Metafunc) -> bool:
    return metafunc.definition.get_closest_marker("both_engines") is not None


@pytest.fixture(scope="session")  # a package's shared system asks for it too
def image_store() -> str:
    """The image store of a `cluster_fixture` system: the local directory; a module that
    defines its own `image_store` fixture answering "s3" runs its system on SeaweedFS."""
    return "local"


def image_store_env(image_store: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that puts a test system's images in `image_store`: nothing for the
    local directory, a prefix of its own in the session's S3 server otherwise."""
    if image_store == "local":
        return {}
    return request.getfixturevalue("seaweedfs").store_env(f"system-{uuid.uuid4().hex}")


@pytest.fixture(params=ENGINES)
def system_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment that puts a test's own system on each engine in turn."""
    with datastore_env(request.param, request) as env:
        yield env


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database of its own for each test, dropped after it."""
    with postgres.new_database() as url:
        yield url


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (32, 24), seed: int = 0) -> bytes:
    """A small deterministic image (a gradient per channel, shifted by `seed`) in `fmt`."""
    image = Image.new("RGB", size)
    pixels = image.load()
    for x in range(size[0]):
        for y in range(size[1]):
            red, green, blue = x * 5 + seed * 37, x * 7 + seed, y * 11 + seed * 3
            pixels[x, y] = (red % 256, green % 256, blue % 256)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def join_over(
    sock: pynng.Req0,
    token: str,
    name: str,
    rpc_port: int = 9,
    tags: tuple[str, ...] = (),
    token_id: str = "",
    concurrency: int = 1,
) -> Message:
    """Join over `sock` as a worker does (hello, challenge, request with its proof, keyed by
    `token`); return the reply. The controller's proof goes unchecked: tests use wrong tokens.
    `token_id` renews that membership, as a re-joining worker does."""
    worker_nonce = new_nonce()
    sock.send(JoinHello(worker_nonce).encode())
    challenge = decode(sock.recv(), JoinChallenge)
    proofs = JoinProofs(token, worker_nonce, challenge.controller_nonce)
    nonce, proof = challenge.controller_nonce, proofs.worker()
    request = JoinRequest(
        name, tags, concurrency, "127.0.0.1", rpc_port, nonce, proof, token_id=token_id
    )
    sock.send(request.encode())
    return decode(sock.recv())


def join(
    cluster: Cluster,
    token: str,
    name: str = "fake-worker",
    rpc_port: int = 9,
    token_id: str = "",
    tags: tuple[str, ...] = (),
) -> Message:
    """Join the cluster's controller as a worker would, on a connection of its own."""
    with pynng.Req0(recv_timeout=5000, send_timeout=5000) as sock:
        sock.dial(f"tcp://127.0.0.1:{cluster.controller_port}")
        return join_over(sock, token, name, rpc_port, tags, token_id)


class FakeWorker:
    """A worker made of the test's sockets; `live_fake_worker` keeps it alive."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.accepted = self.join()

    def join(self, token_id: str = "") -> JoinAccepted:
        """Join (again); `token_id` renews that membership. Telemetry follows the new key."""
        token = (self.cluster.data_dir / "join_token").read_text().strip()
        accepted = join(self.cluster, token, self.name, token_id=token_id)
        assert isinstance(accepted, JoinAccepted), accepted
        self.accepted = accepted
        return accepted

    def report(self, pub: pynng.Pub0) -> None:
        accepted = self.accepted
        sample = Telemetry(accepted.worker_id, 0.0, 0.0, None, (), worker_key=accepted.rpc_key)
        pub.send(sample.encode())


@contextlib.contextmanager
def live_fake_worker(cluster: Cluster, name: str) -> Iterator[FakeWorker]:
    """Join a fake worker and keep it alive with telemetry until the block ends.

    A worker token is valid only while its worker lives: a fake worker that sends no
    telemetry is declared dead, and its token dies, within 3 intervals.
    """
    worker = FakeWorker(cluster, name)
    stop = threading.Event()

    def keep_alive(pub: pynng.Pub0) -> None:
        while not stop.wait(TELEMETRY_INTERVAL_MS / 2000):
            worker.report(pub)

    with pynng.Pub0(dial=f"tcp://127.0.0.1:{worker.accepted.telemetry_port}") as pub:
        reporter = threading.Thread(target=keep_alive, args=(pub,), daemon=True)
        reporter.start()
        try:
            yield worker
        finally:
            stop.set()
            reporter.join()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (with a valid CRC)."""
    data = bytearray(image_bytes("PNG", size=(1, 1)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def slow_png(size: tuple[int, int] = (4000, 3000), seed: int = 0) -> bytes:
    """A small file that is slow to filter: 12 Mpx of a smooth gradient, ~0.3 s a job to
    grayscale, ~1 s to blur. Each `seed` shifts the gradient: another image."""
    gradient = Image.linear_gradient("L").point(lambda value: (value + 37 * seed) % 256)
    out = io.BytesIO()
    gradient.resize(size).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def noise_png(size: tuple[int, int] = (256, 192), seed: int = 0) -> bytes:
    """Random pixels (`seed` picks them), which PNG cannot compress: the file is about as
    large as the pixels, 3 bytes each, and filters as slowly as any image of its size."""
    width, height = size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def workers_by_name(admin: Client) -> dict[str, Worker]:
    return {worker.name: worker for worker in admin.api.workers()}


BUSY_FILTER = "grayscale"  # what start_busy_workload's jobs do (cheap to check after)


def start_busy_workload(
    cluster: Cluster, admin: Client, name: str, images: int
) -> tuple[int, dict[int, bytes]]:
    """Queue `images` slow jobs (distinct images) in a new workload; as soon as the datastore
    shows worker-1 running one, return the workload's id and each original by number."""
    workload_id = admin.api.create_workload(name, BUSY_FILTER).id
    originals = {}
    for data in [slow_png(seed=seed) for seed in range(images)]:  # made first: sent at once
        originals[admin.api.upload_image(workload_id, data).image_id] = data
    wait_until(lambda: running_on(cluster, "worker-1"), 30, "worker-1 to run a job")
    return workload_id, originals
