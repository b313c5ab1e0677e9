"""Resends: the backoff schedule and which failures may be resent (pure), then the
transport's behaviour against loopback servers that refuse, drop, answer 503 or 429, stay
silent or answer something else than the API."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from client import (
    Client,
    ConnectionFailed,
    RateLimited,
    RequestTimedOut,
    RetryPolicy,
    ServerError,
    UnexpectedAnswer,
    User,
)
from client.retries import Failure, may_resend
from tests.conftest import free_port

FAST = RetryPolicy(attempts=3, first_delay_s=0.01, max_delay_s=0.02, jitter=0)
CLOSE, HANG = "close", "hang"  # a script's steps besides an answer


def test_backoff_doubles_up_to_its_cap_and_jitter_cuts_it():
    policy = RetryPolicy(first_delay_s=0.25, max_delay_s=4.0, jitter=0.5)
    assert [policy.backoff_s(n, draw=0.0) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert [policy.backoff_s(n, draw=0.999_999) for n in range(3)] == pytest.approx(
        [0.125, 0.25, 0.5], rel=1e-5
    )


def test_resends_are_bounded_in_count_and_in_total_time():
    policy = RetryPolicy(attempts=3, total_s=10.0)
    assert policy.allows(tries=1, elapsed_s=0.0, wait_s=1.0)
    assert policy.allows(tries=2, elapsed_s=8.0, wait_s=2.0)
    assert not policy.allows(tries=3, elapsed_s=0.0, wait_s=0.0)  # tries spent
    assert not policy.allows(tries=1, elapsed_s=9.5, wait_s=1.0)  # past the total
    assert not RetryPolicy(attempts=1).allows(tries=1, elapsed_s=0.0, wait_s=0.0)


@pytest.mark.parametrize("fields", [{"attempts": 0}, {"first_delay_s": -1}, {"jitter": 1.5}])
def test_a_nonsense_policy_is_refused(fields):
    with pytest.raises(ValueError):
        RetryPolicy(**fields)


@pytest.mark.parametrize(
    ("method", "failure", "opted_in", "resent"),
    [
        ("GET", Failure.NOT_CONNECTED, False, True),
        ("POST", Failure.NOT_CONNECTED, False, True),  # the server never saw it
        ("GET", Failure.CONNECTION_LOST, False, True),
        ("POST", Failure.CONNECTION_LOST, False, False),  # it may have been stored
        ("PATCH", Failure.CONNECTION_LOST, False, False),
        ("DELETE", Failure.CONNECTION_LOST, False, False),
        ("GET", Failure.UNAVAILABLE, False, True),
        ("POST", Failure.UNAVAILABLE, False, False),
        ("GET", Failure.READ_TIMEOUT, False, False),  # a slow server is not asked twice
        ("POST", Failure.RATE_LIMITED, False, False),
        ("POST", Failure.RATE_LIMITED, True, True),
    ],
)
def test_which_failures_are_resent(method, failure, opted_in, resent):
    assert may_resend(method, failure, opted_in) is resent


def _answer(status: int, body: object, headers: dict[str, str] | None = None) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class ScriptedServer:
    """A loopback HTTP server whose n-th request gets the n-th step of its script (the last
    one once the script runs out): an answer's bytes, CLOSE (the connection closed
    unanswered) or HANG (held open, unanswered). `methods` lists the requests it read."""

    def __init__(self, script: list[bytes | str]) -> None:
        self.script = script
        self.methods: list[str] = []
        self.held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn: socket.socket) -> str:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        return head.split(b" ")[0].decode()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the listener was shut down: the test is over
                return
            self.methods.append(self._read_request(conn))
            step = self.script[min(len(self.methods), len(self.script)) - 1]
            if step == HANG:
                self.held.append(conn)
                continue
            if step != CLOSE:
                conn.sendall(step)
            conn.close()

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[ScriptedServer] = []

    def start(*script: bytes | str) -> ScriptedServer:
        servers.append(ScriptedServer(list(script)))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def _retry_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "; try " in record.getMessage()]


def test_a_closed_port_fails_fast_after_a_bounded_number_of_tries(caplog):
    """Connection refused: the server never saw the request, so even a POST is resent."""
    caplog.set_level(logging.INFO, logger="client.transport")
    with Client(f"http://127.0.0.1:{free_port()}", retry=FAST) as client:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed):
            client.status()
        with pytest.raises(ConnectionFailed):
            client.create_workload()
        assert time.monotonic() - started < 2
    lines = _retry_lines(caplog)
    assert [line.split(";")[1] for line in lines] == [
        " try 2 of 3 in 0.01 s",
        " try 3 of 3 in 0.02 s",
    ] * 2
    assert [line.split(" ")[0] for line in lines] == ["GET", "GET", "POST", "POST"]


def test_a_dropped_connection_is_resent_for_a_get_only(serve):
    server = serve(CLOSE)
    with Client(server.url, retry=FAST) as client:
        with pytest.raises(ConnectionFailed):
            client.status()
        with pytest.raises(ConnectionFailed):
            client.create_workload()
    assert server.methods == ["GET", "GET", "GET", "POST"]


def test_a_503_is_resent_for_a_get_only(serve):
    server = serve(_answer(503, {"error": "service_unavailable", "message": "later"}))
    with Client(server.url, retry=FAST) as client:
        with pytest.raises(ServerError) as raised:
            client.workloads()
        assert (raised.value.status, raised.value.error) == (503, "service_unavailable")
        with pytest.raises(ServerError):
            client.create_user("x", "y")
    assert server.methods == ["GET", "GET", "GET", "POST"]


LOGGED_IN = _answer(200, {"user": "ann", "role": "user", "token": "t0k"})
THROTTLED = _answer(429, {"error": "too_many_attempts", "message": "wait"}, {"Retry-After": "0"})


def test_a_429_is_resent_after_its_retry_after_only_when_the_caller_opts_in(serve):
    server = serve(THROTTLED, LOGGED_IN)
    with Client(server.url, retry=FAST) as client, pytest.raises(RateLimited) as raised:
        client.login("ann", "pw")
    assert raised.value.retry_after == 0.0
    assert server.methods == ["POST"]

    server = serve(THROTTLED, LOGGED_IN)
    with Client(server.url, retry=FAST, wait_on_rate_limit=True) as client:
        assert client.login("ann", "pw") == User("ann", "user")
        assert client.token == "t0k"
    assert server.methods == ["POST", "POST"]


def test_a_silent_server_times_out_and_is_not_asked_again(serve):
    server = serve(HANG)
    with (
        Client(server.url, timeout=(1.0, 0.2), retry=FAST) as client,
        pytest.raises(RequestTimedOut),
    ):
        client.workloads()
    assert server.methods == ["GET"]


@pytest.mark.parametrize(
    "answer", [_answer(200, b"<html>hello</html>"), _answer(200, {"workloads": [{"id": 1}]})]
)
def test_an_answer_that_is_not_the_apis_is_unexpected(serve, answer):
    with Client(serve(answer).url, retry=FAST) as client, pytest.raises(UnexpectedAnswer):
        client.workloads()
