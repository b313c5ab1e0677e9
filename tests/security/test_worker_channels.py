"""The worker-side channels to the controller: joining it, and its request and telemetry
sockets over nng (the worker's rpyc port: test_worker_rpc.py)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pynng
import pytest

from protocol import (
    Ack,
    JoinAccepted,
    JoinChallenge,
    JoinHello,
    JoinRefused,
    Telemetry,
    decode,
    new_nonce,
)
from tests.conftest import join, start_cluster, wait_until
from tests.security.helpers import (
    assert_unchanged,
    join_token,
    recorded_cpu,
    snapshot,
)

pytestmark = pytest.mark.both_engines  # joins and telemetry reach the datastore


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
        "controller_nonce": "0" * 32,
    }
    return json.dumps(base | fields).encode()


def _answering_a_challenge(**fields):
    """A payload maker: a JoinRequest with `fields` that answers a challenge got over `sock`."""

    def make(sock: pynng.Req0) -> bytes:
        sock.send(JoinHello(new_nonce()).encode())
        challenge = decode(sock.recv(), JoinChallenge)
        return _join_json(controller_nonce=challenge.controller_nonce, **fields)

    return make


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"garbage", id="garbage"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b"[" * 50_000, id="deep-nesting"),  # under the 64 KiB message limit
        pytest.param(_join_json(), id="join-without-proof"),
        pytest.param(_join_json(proof=None), id="join-null-proof"),
        pytest.param(_join_json(proof=12345), id="join-number-proof"),
        pytest.param(_join_json(proof=["x"]), id="join-list-proof"),
        pytest.param(_join_json(proof="x", admin=True), id="join-extra-field"),
        pytest.param(_join_json(proof="x", join_token="x"), id="join-with-a-token"),
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


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        pytest.param("nul\x00name", (), id="nul-in-name"),
        pytest.param("\ud800name", (), id="surrogate-in-name"),
        pytest.param("tab\tname", (), id="tab-in-name"),
        pytest.param("fine-name", ("nul\x00",), id="nul-in-tag"),
    ],
)
def test_a_join_with_an_unprintable_name_or_tag_is_refused_and_changes_nothing(cluster, name, tags):
    """With the right token: the fields are refused before anything is written (on
    PostgreSQL a NUL would fail the write instead)."""
    before = snapshot(cluster)
    reply = join(cluster, join_token(cluster), name, tags=tags)
    assert isinstance(reply, JoinRefused), reply
    assert "printable" in reply.reason
    assert_unchanged(cluster, before)


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
        return isinstance(join(cluster, join_token(cluster), "probe"), JoinAccepted)
    except pynng.Timeout:
        return False


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty-message"),
        pytest.param(_answering_a_challenge(proof="\ud800"), id="lone-surrogate-proof"),
        pytest.param(b"garbage", id="garbage-control"),
    ],
)
def test_one_bad_message_does_not_stop_the_controller(lone_cluster, payload):
    """Regression test: an empty message (pynng's recv raised RuntimeError for it) and a join
    token with a lone surrogate (its encode() raised UnicodeEncodeError; now the proof, which
    is compared the same way) once ended the controller's request thread, so one
    unauthenticated message stopped every later join, result and hint."""
    assert _answers_joins(lone_cluster)
    with pynng.Req0(recv_timeout=1500, send_timeout=1500) as sock:
        sock.dial(f"tcp://127.0.0.1:{lone_cluster.controller_port}")
        sock.send(payload(sock) if callable(payload) else payload)
        with contextlib.suppress(pynng.Timeout):  # the next join tells whether it survived
            sock.recv()
    assert _answers_joins(lone_cluster)


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
                cpu,
                1.0,
                None,
                (),
                worker_key=accepted.rpc_key,  # the controller drops telemetry without it
            )
            pub.send(sample.encode())
            return recorded_cpu(lone_cluster, accepted.worker_id) == cpu

        try:
            return bool(wait_until(recorded, 4, f"telemetry with cpu {cpu}"))
        except TimeoutError:
            return False

    with pynng.Pub0(send_timeout=1000) as pub:
        pub.dial(f"tcp://127.0.0.1:{accepted.telemetry_port}")
        assert publish_until_recorded(pub, 42.0)  # the channel works
        pub.send(b"")
        assert publish_until_recorded(pub, 77.0)
