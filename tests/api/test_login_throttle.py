"""The login throttle alone: a sliding window of failures in a real datastore file, driven by an
injected clock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import datastore
from api.login_throttle import AccountDelay, LoginThrottle, retry_after_header
from datastore import login_failures
from foundation import defaults


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


@contextmanager
def per_thread_connections(db_path) -> Iterator[Callable[[], sqlite3.Connection]]:
    """A connection getter that opens one connection per thread, as the API's server threads
    have; all of them are closed at the end of the block."""
    per_thread = threading.local()
    opened: list[sqlite3.Connection] = []

    def connection() -> sqlite3.Connection:
        if not hasattr(per_thread, "conn"):
            per_thread.conn = datastore.connect(db_path)
            opened.append(per_thread.conn)
        return per_thread.conn

    try:
        yield connection
    finally:
        for conn in opened:
            conn.close()


def run_at_once(count: int, task: Callable[[int], object]) -> None:
    """Run `task(index)` on `count` threads released together, and wait for all of them."""
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        task(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


def test_defaults_are_the_documented_ones(conn):
    limiter = LoginThrottle(lambda: conn)
    assert limiter.max_failures == defaults.LOGIN_MAX_FAILURES == 5
    assert limiter.window_s == defaults.LOGIN_WINDOW_S == 60
    assert limiter.max_failures_per_address == defaults.LOGIN_MAX_FAILURES_PER_ADDRESS
    assert defaults.LOGIN_MAX_FAILURES_PER_ADDRESS > defaults.LOGIN_MAX_FAILURES
    assert limiter.account_delay == AccountDelay(
        max_failures=10, first_delay_s=1.0, max_delay_s=60.0, memory_s=900.0
    )


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
    with per_thread_connections(db_path) as connection:
        limiter = LoginThrottle(
            connection,
            max_failures=801,
            window_s=10,
            max_failures_per_address=801,
            clock=FakeClock(),
        )
        run_at_once(8, lambda index: fail(limiter, "alice", "10.0.0.1", 100))
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


# The account delay: failures of one username from any addresses.

SHORT_DELAYS = AccountDelay(max_failures=3, first_delay_s=1, max_delay_s=4, memory_s=60)


def attempt(limiter: LoginThrottle, username: str, address: str) -> float:
    """A wrong password, as /login handles it: admitted and failed, or refused with a wait."""
    wait = limiter.admit(username, address)
    if wait == 0:
        limiter.record_failure(username, address)
    return wait


def test_account_delay_doubles_up_to_the_cap():
    delays = [SHORT_DELAYS.delay_s(failures) for failures in range(8)]
    assert delays == [0, 0, 0, 1, 2, 4, 4, 4]
    assert SHORT_DELAYS.delay_s(10**6) == 4  # no overflow however many failures


@pytest.mark.parametrize(
    "limits",
    [
        {"max_failures": 0},
        {"first_delay_s": 0},
        {"first_delay_s": 5, "max_delay_s": 4},
        {"memory_s": 3},  # shorter than the longest delay: the count would reset first
    ],
)
def test_nonsense_account_delays_are_refused(limits):
    options = {"max_failures": 3, "first_delay_s": 1, "max_delay_s": 4, "memory_s": 60}
    with pytest.raises(ValueError):
        AccountDelay(**options | limits)


def test_failures_from_many_addresses_delay_the_account(throttle):
    clock = FakeClock()
    limiter = throttle(clock, account_delay=SHORT_DELAYS)
    addresses = (f"10.0.1.{index}" for index in range(100))
    for _ in range(3):
        assert attempt(limiter, "alice", next(addresses)) == 0
    expected_delays = [1, 2, 4, 4]
    for delay in expected_delays:
        # refused from any address, until the delay after the last failure has passed
        assert limiter.admit("alice", next(addresses)) == pytest.approx(delay)
        clock.now += delay - 0.1
        assert limiter.admit("alice", next(addresses)) == pytest.approx(0.1)
        clock.now += 0.1
        assert attempt(limiter, "alice", next(addresses)) == 0
    assert limiter.retry_after("bob", "10.0.1.1") == 0  # other accounts are not delayed


def test_a_success_resets_the_account(throttle):
    clock = FakeClock()
    limiter = throttle(clock, account_delay=SHORT_DELAYS)
    for index in range(4):
        clock.now += 2
        attempt(limiter, "alice", f"10.0.2.{index}")
    clock.now += 2
    assert limiter.admit("alice", "10.0.2.9") == 0  # the owner's attempt, admitted...
    limiter.record_success("alice", "10.0.2.9")  # ...and right
    for index in range(3):
        assert attempt(limiter, "alice", f"10.0.3.{index}") == 0
    assert limiter.retry_after("alice", "10.0.3.9") == pytest.approx(1)


def test_an_account_is_forgotten_after_its_memory(throttle, conn):
    clock = FakeClock()
    limiter = throttle(clock, account_delay=SHORT_DELAYS)
    for index in range(5):
        clock.now += 2
        attempt(limiter, "alice", f"10.0.4.{index}")
    clock.now += 60
    assert limiter.retry_after("alice", "10.0.4.9") == 0
    attempt(limiter, "bob", "10.0.4.9")  # a later attempt sweeps the forgotten accounts
    assert login_failures.count_accounts(conn) == 1


def test_the_account_table_stays_bounded(throttle, conn):
    clock = FakeClock()
    limiter = throttle(clock, max_entries=100, max_failures_per_address=10_000)
    for index in range(1000):
        clock.now += 0.001
        attempt(limiter, f"user{index}", "10.0.5.1")
        assert login_failures.count_accounts(conn) <= 100


def test_attempts_sent_at_once_when_a_delay_ends_get_through_one_at_a_time(db_path, conn):
    """Threads with a connection each, as the API's server threads: the first admitted
    attempt counts before the next is checked, so only one guess gets through."""
    clock = FakeClock()
    limiter = LoginThrottle(lambda: conn, account_delay=SHORT_DELAYS, clock=clock)
    for index in range(3):
        attempt(limiter, "alice", f"10.0.6.{index}")
    clock.now += 1  # the first delay has passed
    waits: list[float] = []
    with per_thread_connections(db_path) as connection:
        racing = LoginThrottle(connection, account_delay=SHORT_DELAYS, clock=clock)
        run_at_once(8, lambda index: waits.append(racing.admit("alice", f"10.0.7.{index}")))
    assert sorted(waits) == [0] + [pytest.approx(2)] * 7
