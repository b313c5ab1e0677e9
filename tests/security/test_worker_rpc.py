"""The worker's rpyc port: nothing is read without the key's proof, and nothing but
`submit_job` answers with it.

The real worker's port is attacked as an outsider (no key). The surface behind the key is
attacked on the same server code in this process (`keyed_rpc_server`), whose key the test
knows; the real worker's key is never handed out.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
import rpyc

from foundation.defaults import RPC_CONNECT_TIMEOUT_S, RPC_MAX_CONNECTIONS
from protocol import JobAssignment, JoinAccepted
from tests.conftest import ADMIN_PASSWORD, join
from tests.security.helpers import database, join_token

# --- the real worker, without the key ---------------------------------------------------


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


def _closed_within(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the peer closes `sock` (or resets it) within `timeout_s`, sending nothing."""
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(bytes(32), id="wrong-proof"),
        pytest.param(b"\x00\x00\x00\x10\x00" + b"x" * 27, id="an-rpyc-frame"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
    ],
)
def test_a_connection_without_the_key_proof_is_closed_unanswered(rpc_address, opening):
    with socket.create_connection(rpc_address, timeout=10) as sock:
        sock.sendall(opening)
        assert _closed_within(sock, 5)


def test_a_silent_connection_is_closed_after_the_connect_timeout(rpc_address):
    with socket.create_connection(rpc_address, timeout=10) as sock:
        started = time.monotonic()
        assert _closed_within(sock, RPC_CONNECT_TIMEOUT_S + 10)
        assert time.monotonic() - started >= RPC_CONNECT_TIMEOUT_S * 0.9


def test_rpyc_without_the_key_gets_no_root(rpc_address):
    conn = rpyc.connect(*rpc_address, config={"sync_request_timeout": 10})
    try:
        with pytest.raises(EOFError):
            conn.root.submit_job("key", b"")
    finally:
        conn.close()


def test_classic_mode_gets_nothing(rpc_address):
    with pytest.raises(EOFError):
        rpyc.classic.connect(*rpc_address).modules.os.getpid()


def test_connections_past_the_cap_are_closed_at_once(cluster, rpc_address):
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(rpc_address, timeout=10))
            for _ in range(RPC_MAX_CONNECTIONS + 1)
        ]
        # Each held slot lasts the connect timeout; one past the cap is closed at accept.
        closed_at_once = [s for s in socks if _closed_within(s, 0.05)]
        assert len(closed_at_once) >= 1
        assert len(closed_at_once) < len(socks)
    assert "refused an rpc connection" in cluster.log("worker-1")


# --- the same server code, with the key ---------------------------------------------------


@pytest.fixture
def rpc(keyed_rpc_server) -> Iterator[rpyc.Connection]:
    conn = keyed_rpc_server.connect()
    try:
        yield conn
    finally:
        conn.close()


def test_the_key_proof_opens_the_connection(keyed_rpc_server, rpc):
    keyed_rpc_server.submitted.clear()
    job = JobAssignment(7, 1, 0, "grayscale", {}, 1)
    assert rpc.root.submit_job(keyed_rpc_server.key, job.encode()) is True
    assert keyed_rpc_server.submitted == [job]


def test_a_proof_made_with_another_key_is_refused(keyed_rpc_server):
    conn = keyed_rpc_server.connect(key="not-the-key")
    try:
        with pytest.raises(EOFError):
            conn.root.submit_job(keyed_rpc_server.key, b"")
    finally:
        conn.close()


REACH_ATTEMPTS = [
    pytest.param(lambda c: c.root.getmodule("os"), id="root.getmodule"),
    pytest.param(lambda c: c.root.rpc_key, id="root.rpc_key"),
    pytest.param(lambda c: c.root.rpc_key(), id="root.rpc_key()"),
    pytest.param(lambda c: c.root._submit, id="root._submit"),
    pytest.param(lambda c: c.root._rpyc_getattr("rpc_key"), id="root._rpyc_getattr"),
    pytest.param(lambda c: c.root._conn, id="root._conn"),
    pytest.param(lambda c: c.root.__dict__, id="root.__dict__"),
    pytest.param(lambda c: c.root.__getattribute__("rpc_key"), id="root.__getattribute__"),
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
def test_submit_job_without_the_key_runs_nothing(cluster, keyed_rpc_server, rpc, kind):
    """Behind an authenticated connection the key is checked again on every call: a
    connection outlives a re-join, which changes the key."""
    keyed_rpc_server.submitted.clear()
    Spy.calls.clear()
    job = JobAssignment(7, 1, 0, "grayscale", {}, 1).encode()
    assert rpc.root.submit_job(_key(kind, cluster), job) is False
    assert Spy.calls == []
    assert keyed_rpc_server.submitted == []


def test_a_remote_error_carries_no_traceback_or_version(rpc):
    """Regression test: rpyc sent any caller the worker's full traceback (file paths, code)
    and its rpyc version with each error."""
    with pytest.raises(TypeError) as raised:
        rpc.root.submit_job("only-a-key")
    assert "missing 1 required positional argument" in str(raised.value)  # the message stays
    remote_tb = raised.value._remote_tb
    assert "Traceback" not in remote_tb
    assert ".py" not in remote_tb
    assert raised.value._remote_version == "<version denied>"
    assert rpc.root.submit_job("not-the-key", b"") is False  # the connection still works


def test_the_real_worker_is_still_alive_after_the_attacks(cluster):
    admin = cluster.login("admin", ADMIN_PASSWORD)
    workers = {w["name"]: w for w in admin.get("/status").json()["workers"]}
    assert workers["worker-1"]["alive"] is True
