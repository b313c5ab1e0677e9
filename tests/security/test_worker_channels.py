"""The worker-side channels: joining the controller over nng, and the worker's rpyc port."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pynng
import pytest
import rpyc

from protocol import Ack, JobAssignment, JoinAccepted, JoinRefused, Telemetry, decode
from tests.conftest import join, start_cluster, wait_until
from tests.security.helpers import assert_unchanged, database, join_token, snapshot

WRONG_TOKENS = [
    pytest.param(lambda right: "", id="empty"),
    pytest.param(lambda right: "wrong-token", id="wrong"),
    pytest.param(lambda right: right + "x", id="right-plus-one"),
    pytest.param(lambda right: right[:-1], id="right-minus-one"),
    pytest.param(lambda right: right[: len(right) // 2], id="right-prefix"),
    pytest.param(lambda right: right.swapcase(), id="swapped-case"),
    pytest.param(lambda right: " " + right, id="leading-space"),
    pytest.param(lambda right: right + "\n", id="trailing-newline"),
    pytest.param(lambda right: "\x00" * len(right), id="nuls"),
    pytest.param(lambda right: "x" * 100_000, id="100k-chars"),
]


@pytest.mark.parametrize("make_token", WRONG_TOKENS)
def test_join_with_a_wrong_token_is_refused_and_gets_no_credentials(cluster, make_token):
    right = join_token(cluster)
    token = make_token(right)
    assert token != right
    before = snapshot(cluster)
    reply = join(cluster, token, f"intruder-{len(token)}")
    assert isinstance(reply, JoinRefused), reply
    assert "join token" in reply.reason
    assert not any(field in reply.__dict__ for field in ("worker_token", "rpc_key", "api_url"))
    assert_unchanged(cluster, before)  # no row in `workers` either


def _raw_request(cluster, payload: bytes) -> bytes:
    with pynng.Req0(recv_timeout=5000, send_timeout=5000) as sock:
        sock.dial(f"tcp://127.0.0.1:{cluster.controller_port}")
        sock.send(payload)
        return sock.recv()


def _join_json(**fields) -> bytes:
    base = {
        "kind": "join",
        "worker_name": "raw-intruder",
        "tags": [],
        "concurrency": 1,
        "rpc_host": "127.0.0.1",
        "rpc_port": 9,
    }
    return json.dumps(base | fields).encode()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"garbage", id="garbage"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b"[" * 100_000, id="deep-nesting"),
        pytest.param(_join_json(), id="join-without-token"),
        pytest.param(_join_json(join_token=None), id="join-null-token"),
        pytest.param(_join_json(join_token=12345), id="join-number-token"),
        pytest.param(_join_json(join_token=["x"]), id="join-list-token"),
        pytest.param(_join_json(join_token="x", admin=True), id="join-extra-field"),
        pytest.param(
            json.dumps({"kind": "join_accepted", "worker_id": 1}).encode(), id="reply-kind"
        ),
    ],
)
def test_malformed_requests_to_the_controller_are_refused(cluster, payload):
    before = snapshot(cluster)
    reply = decode(_raw_request(cluster, payload))
    assert isinstance(reply, Ack | JoinRefused), reply
    if isinstance(reply, Ack):
        assert reply.ok is False
        assert reply.detail
    assert_unchanged(cluster, before)
    assert isinstance(join(cluster, "still-wrong", "liveness-probe"), JoinRefused)


@pytest.fixture
def lone_cluster(tmp_path) -> Iterator:
    """A cluster of its own, without workers, for a test that may break its controller."""
    running = start_cluster(tmp_path, workers=0)
    try:
        yield running
    finally:
        running.stop_all()


def _answers_joins(cluster) -> bool:
    try:
        with pynng.Req0(recv_timeout=1500, send_timeout=1500) as sock:
            sock.dial(f"tcp://127.0.0.1:{cluster.controller_port}")
            sock.send(_join_json(worker_name="probe", join_token=join_token(cluster)))
            return isinstance(decode(sock.recv()), JoinAccepted)
    except pynng.Timeout:
        return False


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty-message"),
        pytest.param(_join_json(join_token="\ud800"), id="lone-surrogate-join-token"),
        pytest.param(b"garbage", id="garbage-control"),
    ],
)
def test_one_bad_message_does_not_stop_the_controller(lone_cluster, payload):
    """Regression test: an empty message (pynng's recv raised RuntimeError for it) and a join
    token with a lone surrogate (its encode() raised UnicodeEncodeError) once ended the
    controller's request thread, so one unauthenticated message stopped every later join,
    result and hint."""
    assert _answers_joins(lone_cluster)
    with pynng.Req0(recv_timeout=1500, send_timeout=1500) as sock:
        sock.dial(f"tcp://127.0.0.1:{lone_cluster.controller_port}")
        sock.send(payload)
        with contextlib.suppress(pynng.Timeout):  # the next join tells whether it survived
            sock.recv()
    assert _answers_joins(lone_cluster)


def _cpu_of(cluster, worker_id: int) -> float:
    conn = database(cluster)
    try:
        return conn.execute(
            "SELECT cpu_percent FROM workers WHERE id = ?", (worker_id,)
        ).fetchone()[0]
    finally:
        conn.close()


def test_an_empty_telemetry_message_does_not_stop_telemetry(lone_cluster):
    """Regression test: pynng's recv raised RuntimeError for a zero-length message, which once
    ended the telemetry thread, so one empty message from anyone who can reach the telemetry
    port (no credential needed) had every worker declared dead after 3 intervals."""
    accepted = join(lone_cluster, join_token(lone_cluster), "telemetry-probe")
    assert isinstance(accepted, JoinAccepted)

    def publish_until_recorded(pub: pynng.Pub0, cpu: float) -> bool:
        def recorded():
            sample = Telemetry(
                accepted.worker_id,
                "telemetry-probe",
                cpu,
                1.0,
                None,
                (),
                0,
                worker_key=accepted.rpc_key,  # the controller drops telemetry without it
            )
            pub.send(sample.encode())
            return _cpu_of(lone_cluster, accepted.worker_id) == cpu

        try:
            return bool(wait_until(recorded, 4, f"telemetry with cpu {cpu}"))
        except TimeoutError:
            return False

    with pynng.Pub0(send_timeout=1000) as pub:
        pub.dial(f"tcp://127.0.0.1:{accepted.telemetry_port}")
        assert publish_until_recorded(pub, 42.0)  # the channel works
        pub.send(b"")
        assert publish_until_recorded(pub, 77.0)


# --- the worker's rpyc port -------------------------------------------------------------


@pytest.fixture(scope="module")
def rpc_address(cluster) -> tuple[str, int]:
    conn = database(cluster)
    try:
        row = conn.execute(
            "SELECT rpc_host, rpc_port FROM workers WHERE name = 'worker-1'"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return row[0], row[1]


@pytest.fixture
def rpc(rpc_address) -> Iterator[rpyc.Connection]:
    conn = rpyc.connect(*rpc_address, config={"sync_request_timeout": 10})
    try:
        yield conn
    finally:
        conn.close()


REACH_ATTEMPTS = [
    pytest.param(lambda c: c.root.getmodule("os"), id="root.getmodule"),
    pytest.param(lambda c: c.modules.os, id="modules"),
    pytest.param(lambda c: c.builtins, id="builtins"),
    pytest.param(lambda c: c.eval("__import__('os').getpid()"), id="eval"),
    pytest.param(lambda c: c.execute("import os"), id="execute"),
    pytest.param(lambda c: c.root._rpc_key, id="root._rpc_key"),
    pytest.param(lambda c: c.root._rpc_key(), id="root._rpc_key()"),
    pytest.param(lambda c: c.root._submit, id="root._submit"),
    pytest.param(lambda c: c.root._rpyc_getattr("_rpc_key"), id="root._rpyc_getattr"),
    pytest.param(lambda c: c.root._conn, id="root._conn"),
    pytest.param(lambda c: c.root.__dict__, id="root.__dict__"),
    pytest.param(lambda c: c.root.__class__, id="root.__class__"),
    pytest.param(lambda c: c.root.__getattribute__("_rpc_key"), id="root.__getattribute__"),
    pytest.param(lambda c: c.root.exposed_submit_job.__globals__, id="exposed_submit.__globals__"),
    pytest.param(lambda c: c.root.submit_job.__globals__, id="submit.__globals__"),
    pytest.param(lambda c: c.root.submit_job.__func__, id="submit.__func__"),
    pytest.param(lambda c: c.root.submit_job.__self__, id="submit.__self__"),
    pytest.param(lambda c: c.root.submit_job.__code__, id="submit.__code__"),
    pytest.param(lambda c: c.root.submit_job.__closure__, id="submit.__closure__"),
]


@pytest.mark.parametrize("attempt", REACH_ATTEMPTS)
def test_rpyc_exposes_nothing_but_the_job_method(rpc, attempt):
    with pytest.raises(AttributeError):
        attempt(rpc)
    assert rpc.root.submit_job("not-the-key", b"") is False  # the connection still works


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(lambda c: c.root.__reduce_ex__(2), id="reduce_ex"),
        pytest.param(lambda c: rpyc.utils.classic.obtain(c.root), id="obtain"),
    ],
)
def test_rpyc_refuses_to_pickle(rpc, attempt):
    with pytest.raises(ValueError, match="pickling is disabled"):
        attempt(rpc)
    assert rpc.root.submit_job("not-the-key", b"") is False  # the connection still works


def test_classic_mode_is_refused(rpc_address):
    with pytest.raises(AttributeError):
        conn = rpyc.classic.connect(*rpc_address)
        try:
            conn.modules.os.getpid()
        finally:
            conn.close()


class Spy:
    """A client-side object that records any call the worker makes back on it."""

    calls: list[str] = []  # noqa: RUF012 - shared on purpose: the worker would call back

    def __eq__(self, other):
        Spy.calls.append("__eq__")
        return True

    def __hash__(self):
        Spy.calls.append("__hash__")
        return 0

    def __str__(self):
        Spy.calls.append("__str__")
        return "key"

    def encode(self, *args):
        Spy.calls.append("encode")
        return b"key"


@pytest.fixture(scope="module")
def queued_job(cluster, alice) -> tuple[int, bytes]:
    """Alice's image 0: its job waits (tag `nowhere`); the assignment bytes for it."""
    conn = database(cluster)
    try:
        job_id, status, attempts = conn.execute(
            "SELECT id, status, attempts FROM jobs WHERE workload_id = ? AND image_number = 0",
            (alice.workload_id,),
        ).fetchone()
    finally:
        conn.close()
    assert (status, attempts) == ("queued", 0)
    return job_id, JobAssignment(job_id, alice.workload_id, 0, "grayscale", {}, 1).encode()


def _key(kind: str, cluster) -> object:
    if kind == "other-workers-key":
        accepted = join(cluster, join_token(cluster), "key-donor")
        assert isinstance(accepted, JoinAccepted)
        return accepted.rpc_key
    return {
        "wrong": "wrong-key",
        "empty": "",
        "join-token": join_token(cluster),
        "jwt-secret": (cluster.data_dir / "jwt_secret").read_text().strip(),
        "bytes": b"wrong-key",
        "number": 0,
        "none": None,
        "list": ["wrong-key"],
        "spy": Spy(),
    }[kind]


STRING_KEYS = {"wrong", "empty", "join-token", "jwt-secret", "other-workers-key"}


@pytest.mark.parametrize(
    "kind",
    [
        "wrong",
        "empty",
        "join-token",
        "jwt-secret",
        "other-workers-key",
        "bytes",
        "number",
        "none",
        "list",
        "spy",
    ],
)
def test_submit_job_without_the_controllers_key_runs_nothing(cluster, rpc, queued_job, kind):
    _, assignment = queued_job
    key = _key(kind, cluster)
    refusals = cluster.log("worker-1").count("refused a job call with a wrong rpc key")
    Spy.calls.clear()
    before = snapshot(cluster)
    assert rpc.root.submit_job(key, assignment) is False
    assert Spy.calls == []
    if kind in STRING_KEYS:  # a string key reaches the comparison, and is refused there
        wait_until(
            lambda: (
                cluster.log("worker-1").count("refused a job call with a wrong rpc key") > refusals
            ),
            10,
            "the worker to log the refusal",
        )
    assert_unchanged(cluster, before)  # the job is still queued, attempt 0, no worker


def test_worker_still_serves_and_never_ran_the_job(cluster, admin, rpc, queued_job):
    """Runs after the attacks: a job the worker had started would have been logged as
    `job <id> discarded` (its download answers 404, the job not being assigned to it)."""
    job_id, _ = queued_job
    assert rpc.root.submit_job("still-wrong", b"") is False
    workers = {w["name"]: w for w in admin.get("/status").json()["workers"]}
    assert workers["worker-1"]["alive"] is True
    assert workers["worker-1"]["running_jobs"] == 0
    assert f"job {job_id} " not in cluster.log("worker-1")
