"""The worker's rpyc port: nothing is read without the key's proof, and nothing but
`submit_jobs` answers with it.

The real worker's port is attacked as an outsider (no key). The surface behind the key is
attacked on the same server code in this process (`keyed_rpc_server`), whose key the test
knows; the real worker's key is never handed out. Each attempt on that surface is first
shown to work against the same service served with rpyc's attribute access or classic
mode on (`wide_open_rpc.py`), so none of them can pass by failing on its own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rpyc

from foundation.defaults import RPC_CONNECT_TIMEOUT_S, RPC_MAX_CONNECTIONS
from protocol import JobAssignment, JobBatch, JoinAccepted
from protocol.rpc import SAFE_RPYC_CONFIG
from tests.conftest import ADMIN_PASSWORD, join
from tests.security.helpers import database, join_token

REPO = Path(__file__).resolve().parents[2]
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
            conn.root.submit_jobs("key", b"")
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
    jobs = (JobAssignment(7, 1, 0, "grayscale", {}), JobAssignment(9, 1, 1, "blur", {}))
    assert rpc.root.submit_jobs(keyed_rpc_server.key, JobBatch(jobs).encode()) == (
        "accepted",
        "accepted",
    )
    assert keyed_rpc_server.submitted == list(jobs)


def test_a_proof_of_the_key_the_worker_is_about_to_get_is_awaited(keyed_rpc_server):
    """The scheduler connects with a new join's key as soon as it has stored the join,
    maybe before the worker has read its JoinAccepted: the connection waits for the key
    (up to the connect timeout) instead of being refused and the worker set aside."""
    old_key, new_key = keyed_rpc_server.key, "the-next-rpc-key"
    keyed_rpc_server.key_asked.clear()
    conn = keyed_rpc_server.connect(key=new_key)
    try:
        assert keyed_rpc_server.key_asked.wait(10)  # it read the proof and found the old key
        keyed_rpc_server.key = new_key
        keyed_rpc_server.service.key_changed()
        batch = JobBatch((JobAssignment(8, 1, 0, "grayscale", {}),))
        assert conn.root.submit_jobs(new_key, batch.encode()) == ("accepted",)
    finally:
        conn.close()
        keyed_rpc_server.key = old_key


def test_a_proof_made_with_another_key_is_refused(keyed_rpc_server):
    conn = keyed_rpc_server.connect(key="not-the-key")
    try:
        with pytest.raises(EOFError):
            conn.root.submit_jobs(keyed_rpc_server.key, b"")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def wide_open_rpc() -> Iterator[dict[str, int]]:
    """`wide_open_rpc.py` in a process of its own: its port for each misconfiguration."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.security.wide_open_rpc"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.stdin.close()  # it serves until then
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pid_by_execute(conn: rpyc.Connection) -> int:
    conn.execute("import os; pid = os.getpid()")
    return conn.namespace["pid"]


_JOB = JobAssignment(7, 1, 0, "grayscale", {})
_NO_ATTRIBUTE = (AttributeError, "cannot access")

# Each attempt reaches the key or runs code in a server set up with the misconfiguration
# named beside it; against the worker's own server it must raise the error beside that.
# (Pickling is not among them: the service holds a lock, which no rpyc option pickles.)
REACH_ATTEMPTS = [
    pytest.param(
        lambda connect: connect().root.rpc_key(),
        "allow_public_attrs",
        _NO_ATTRIBUTE,
        id="root.rpc_key()",
    ),
    pytest.param(
        lambda connect: connect().root.__getattribute__("rpc_key")(),
        "allow_public_attrs",
        _NO_ATTRIBUTE,
        id="root.__getattribute__",
    ),
    pytest.param(
        lambda connect: connect().root.__dict__["rpc_key"](),
        "allow_all_attrs",
        _NO_ATTRIBUTE,
        id="root.__dict__",
    ),
    pytest.param(
        lambda connect: connect().root._submit(_JOB),
        "allow_all_attrs",
        _NO_ATTRIBUTE,
        id="root._submit",
    ),
    pytest.param(
        lambda connect: connect().root.submit_jobs.__self__.rpc_key(),
        "allow_all_attrs",
        _NO_ATTRIBUTE,
        id="submit.__self__",
    ),
    pytest.param(
        lambda connect: connect().root.submit_jobs.__func__.__code__.co_filename,
        "allow_all_attrs",
        _NO_ATTRIBUTE,
        id="submit.__func__",
    ),
    pytest.param(
        lambda connect: connect().root.submit_jobs.__globals__["hmac"],
        "allow_all_attrs",
        _NO_ATTRIBUTE,
        id="submit.__globals__",
    ),
    pytest.param(
        lambda connect: (
            connect()
            .root.exposed_submit_jobs.__globals__["__builtins__"]["__import__"]("os")
            .getpid()
        ),
        "allow_all_attrs",
        _NO_ATTRIBUTE,
        id="exposed_submit.__globals__",
    ),
    pytest.param(
        lambda connect: connect().root.getmodule("os").getpid(),
        "classic",
        _NO_ATTRIBUTE,
        id="root.getmodule",
    ),
    pytest.param(
        lambda connect: connect(rpyc.ClassicService).modules.os.getpid(),
        "classic",
        _NO_ATTRIBUTE,
        id="classic.modules",
    ),
    pytest.param(
        lambda connect: connect(rpyc.ClassicService).builtins.open,
        "classic",
        _NO_ATTRIBUTE,
        id="classic.builtins",
    ),
    pytest.param(
        lambda connect: connect(rpyc.ClassicService).eval("__import__('os').getpid()"),
        "classic",
        _NO_ATTRIBUTE,
        id="classic.eval",
    ),
    pytest.param(
        lambda connect: _pid_by_execute(connect(rpyc.ClassicService)),
        "classic",
        _NO_ATTRIBUTE,
        id="classic.execute",
    ),
]


@pytest.mark.parametrize(("attempt", "misconfiguration", "refusal"), REACH_ATTEMPTS)
def test_what_reaches_a_misconfigured_rpyc_server_is_refused_by_ours(
    keyed_rpc_server, wide_open_rpc, attempt, misconfiguration, refusal
):
    keyed_rpc_server.submitted.clear()
    with contextlib.ExitStack() as connections:

        def to_wide_open(service: type[rpyc.Service] = rpyc.VoidService) -> rpyc.Connection:
            port = wide_open_rpc[misconfiguration]
            conn = rpyc.connect("127.0.0.1", port, service, dict(SAFE_RPYC_CONFIG))
            return connections.enter_context(conn)

        def to_ours(service: type[rpyc.Service] = rpyc.VoidService) -> rpyc.Connection:
            return connections.enter_context(keyed_rpc_server.connect(service=service))

        assert attempt(to_wide_open) is not None  # rpyc set up wrong lets it through ...
        error, message = refusal
        with pytest.raises(error, match=message):
            attempt(to_ours)  # ... the worker's server does not
        to_ours().root.submit_jobs("not-the-key", b"")  # which still answers
    assert keyed_rpc_server.submitted == []


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(lambda c: c.root.__reduce_ex__(2), id="reduce_ex"),
        pytest.param(lambda c: rpyc.utils.classic.obtain(c.root), id="obtain"),
    ],
)
def test_rpyc_refuses_to_pickle(keyed_rpc_server, rpc, attempt):
    """Refused by the setting itself, before the service is looked at."""
    keyed_rpc_server.submitted.clear()
    with pytest.raises(ValueError, match="pickling is disabled"):
        attempt(rpc)
    rpc.root.submit_jobs("not-the-key", b"")  # the connection still answers
    assert keyed_rpc_server.submitted == []


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
def test_submit_jobs_without_the_key_runs_nothing(cluster, keyed_rpc_server, rpc, kind):
    """Behind an authenticated connection the key is checked again on every call: a
    connection outlives a re-join, which changes the key."""
    keyed_rpc_server.submitted.clear()
    Spy.calls.clear()
    batch = JobBatch((JobAssignment(7, 1, 0, "grayscale", {}),)).encode()
    assert rpc.root.submit_jobs(_key(kind, cluster), batch) == ("refused",)
    assert Spy.calls == []
    assert keyed_rpc_server.submitted == []


def test_a_remote_error_carries_no_traceback_or_version(rpc):
    """Regression test: rpyc sent any caller the worker's full traceback (file paths, code)
    and its rpyc version with each error."""
    with pytest.raises(TypeError) as raised:
        rpc.root.submit_jobs("only-a-key")
    assert "missing 1 required positional argument" in str(raised.value)  # the message stays
    remote_tb = raised.value._remote_tb
    assert "Traceback" not in remote_tb
    assert ".py" not in remote_tb
    assert raised.value._remote_version == "<version denied>"
    assert rpc.root.submit_jobs("not-the-key", b"") == ("refused",)  # the connection still works


def test_the_real_worker_is_still_alive_after_the_attacks(cluster):
    admin = cluster.login("admin", ADMIN_PASSWORD)
    workers = {w["name"]: w for w in admin.get("/status").json()["workers"]}
    assert workers["worker-1"]["alive"] is True
