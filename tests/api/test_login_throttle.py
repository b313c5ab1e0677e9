"""The login throttle alone: a sliding window of failures in a real datastore file, driven by an
injected clock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import datastore
from api.login_throttle import LoginThrottle, retry_after_header
from dpip import defaults


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dpip.sqlite3"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = datastore.connect(db_path)
    yield connection
    connection.close()


@pytest.fixture
def throttle(conn: sqlite3.Connection) -> Callable[..., LoginThrottle]:
    """Make a throttle on the test's datastore, with small limits unless told otherwise."""

    def make(clock: FakeClock, **limits) -> LoginThrottle:
        options = {"max_failures": 3, "window_s": 10, "max_failures_per_address": 5, **limits}
        return LoginThrottle(lambda: conn, clock=clock, **options)

    return make


def fail(limiter: LoginThrottle, username: str, address: str, times: int) -> None:
    for _ in range(times):
        limiter.record_failure(username, address)


def test_defaults_are_the_documented_ones(conn):
    limiter = LoginThrottle(lambda: conn)
    assert limiter.max_failures == defaults.LOGIN_MAX_FAILURES == 5
    assert limiter.window_s == defaults.LOGIN_WINDOW_S == 60
    assert limiter.max_failures_per_address == defaults.LOGIN_MAX_FAILURES_PER_ADDRESS
    assert defaults.LOGIN_MAX_FAILURES_PER_ADDRESS > defaults.LOGIN_MAX_FAILURES


def test_blocks_after_max_failures_until_the_oldest_leaves_the_window(throttle):
    clock = FakeClock()
    limiter = throttle(clock)
    for _ in range(3):
        assert limiter.retry_after("alice", "10.0.0.1") == 0
        limiter.record_failure("alice", "10.0.0.1")
        clock.now += 1
    # failures at 1000, 1001, 1002; now 1003: free again at 1010
    assert limiter.retry_after("alice", "10.0.0.1") == pytest.approx(7)
    clock.now = 1009.9
    assert limiter.retry_after("alice", "10.0.0.1") == pytest.approx(0.1)
    clock.now = 1010.0
    assert limiter.retry_after("alice", "10.0.0.1") == 0
    limiter.record_failure("alice", "10.0.0.1")  # back at 3 in the window (1001, 1002, 1010)
    assert limiter.retry_after("alice", "10.0.0.1") == pytest.approx(1)


@pytest.mark.parametrize(
    ("username", "address"),
    [("bob", "10.0.0.1"), ("alice", "10.0.0.2"), ("Alice", "10.0.0.1"), ("alice ", "10.0.0.1")],
)
def test_other_usernames_and_addresses_are_not_blocked(throttle, username, address):
    limiter = throttle(FakeClock())
    fail(limiter, "alice", "10.0.0.1", 3)
    assert limiter.retry_after("alice", "10.0.0.1") > 0
    assert limiter.retry_after(username, address) == 0


def test_per_address_cap_across_usernames(throttle):
    clock = FakeClock()
    limiter = throttle(clock)
    for name in ("a", "b", "c", "d", "e"):  # 5 different users, one failure each
        limiter.record_failure(name, "10.0.0.9")
    assert limiter.retry_after("never-tried", "10.0.0.9") == pytest.approx(10)
    assert limiter.retry_after("never-tried", "10.0.0.10") == 0
    clock.now += 10
    assert limiter.retry_after("never-tried", "10.0.0.9") == 0


def test_address_cap_is_never_below_the_per_user_cap(throttle):
    limiter = throttle(FakeClock(), max_failures=8, max_failures_per_address=2)
    assert limiter.max_failures_per_address == 8


def test_success_clears_only_its_own_pair(throttle):
    limiter = throttle(FakeClock(), max_failures_per_address=6)
    fail(limiter, "alice", "10.0.0.1", 3)
    fail(limiter, "bob", "10.0.0.1", 2)
    limiter.record_success("bob", "10.0.0.1")
    assert limiter.retry_after("alice", "10.0.0.1") > 0  # bob's success resets nothing of alice
    fail(limiter, "bob", "10.0.0.1", 1)  # the address now has 6 failures: its cap
    assert limiter.retry_after("carol", "10.0.0.1") > 0
    limiter.record_success("alice", "10.0.0.1")
    assert limiter.retry_after("carol", "10.0.0.1") > 0  # the address's count is kept


def test_success_after_some_failures_resets_that_pair(throttle):
    limiter = throttle(FakeClock())
    fail(limiter, "alice", "10.0.0.1", 2)
    limiter.record_success("alice", "10.0.0.1")
    fail(limiter, "alice", "10.0.0.1", 2)
    assert limiter.retry_after("alice", "10.0.0.1") == 0


def test_expired_entries_are_dropped(throttle):
    clock = FakeClock()
    limiter = throttle(clock)
    for index in range(50):
        limiter.record_failure(f"user{index}", f"10.0.{index}.1")
    assert len(limiter) == 100  # one pair and one address each
    clock.now += 11
    limiter.record_failure("late", "10.9.9.9")  # a later call sweeps the expired ones
    assert len(limiter) == 2


def test_the_table_stays_bounded_under_a_flood_of_distinct_keys(throttle):
    clock = FakeClock()
    limiter = throttle(clock, max_entries=100)
    for index in range(1000):
        limiter.record_failure(f"user{index}", f"10.{index // 256}.{index % 256}.1")
        clock.now += 0.001  # all inside the window
        assert len(limiter) <= 100
    # the newest failures are the ones remembered
    fail(limiter, "user999", "10.3.231.1", 2)
    assert limiter.retry_after("user999", "10.3.231.1") > 0


def test_long_usernames_are_digested(throttle, conn):
    limiter = throttle(FakeClock())
    fail(limiter, "x" * 1_000_000, "10.0.0.1", 3)
    assert limiter.retry_after("x" * 1_000_000, "10.0.0.1") > 0
    assert limiter.retry_after("x" * 999_999, "10.0.0.1") == 0
    assert all(len(key) < 100 for (key,) in conn.execute("SELECT key FROM login_failures"))


def test_lone_surrogates_in_usernames_do_not_crash(throttle):
    limiter = throttle(FakeClock())
    fail(limiter, "\ud800", "10.0.0.1", 3)
    assert limiter.retry_after("\ud800", "10.0.0.1") > 0


def test_concurrent_failures_are_all_counted(db_path, conn):
    """Threads with a connection each, as the API's server threads have: no failure is lost."""
    per_thread = threading.local()
    opened = []

    def connection() -> sqlite3.Connection:
        if not hasattr(per_thread, "conn"):
            per_thread.conn = datastore.connect(db_path)
            opened.append(per_thread.conn)
        return per_thread.conn

    limiter = LoginThrottle(
        connection, max_failures=801, window_s=10, max_failures_per_address=801, clock=FakeClock()
    )
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        fail(limiter, "alice", "10.0.0.1", 100)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for thread_conn in opened:
            thread_conn.close()
    assert limiter.retry_after("alice", "10.0.0.1") == 0  # 800 failures: one below the cap
    limiter.record_failure("alice", "10.0.0.1")
    assert limiter.retry_after("alice", "10.0.0.1") > 0


def test_processes_on_one_datastore_share_the_count(db_path, conn):
    """Two throttles on two connections to one file, as two API processes: each sees the
    other's failures, and a success through one clears the pair for both."""
    clock = FakeClock()
    other_conn = datastore.connect(db_path)
    try:
        here = LoginThrottle(lambda: conn, max_failures=3, window_s=10, clock=clock)
        there = LoginThrottle(lambda: other_conn, max_failures=3, window_s=10, clock=clock)
        fail(here, "alice", "10.0.0.1", 2)
        there.record_failure("alice", "10.0.0.1")
        assert here.retry_after("alice", "10.0.0.1") == pytest.approx(10)
        assert there.retry_after("alice", "10.0.0.1") == pytest.approx(10)
        there.record_success("alice", "10.0.0.1")
        assert here.retry_after("alice", "10.0.0.1") == 0
    finally:
        other_conn.close()


@pytest.mark.parametrize(
    "limits",
    [{"max_failures": 0}, {"window_s": 0}, {"window_s": -1}, {"max_failures_per_address": 0}],
)
def test_nonsense_limits_are_refused(throttle, limits):
    with pytest.raises(ValueError):
        throttle(FakeClock(), **limits)


@pytest.mark.parametrize(
    ("wait_s", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60"), (0, "1")]
)
def test_retry_after_header_is_whole_seconds_rounded_up(wait_s, header):
    assert retry_after_header(wait_s) == header
