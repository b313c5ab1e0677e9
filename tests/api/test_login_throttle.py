"""The login throttle alone: a sliding window of failures, driven by an injected clock."""

from __future__ import annotations

import threading

import pytest

from api.login_throttle import LoginThrottle, retry_after_header
from dpip import defaults


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def throttle(clock: FakeClock, **limits) -> LoginThrottle:
    options = {"max_failures": 3, "window_s": 10, "max_failures_per_address": 5, **limits}
    return LoginThrottle(clock=clock, **options)


def fail(limiter: LoginThrottle, username: str, address: str, times: int) -> None:
    for _ in range(times):
        limiter.record_failure(username, address)


def test_defaults_are_the_documented_ones():
    limiter = LoginThrottle()
    assert limiter.max_failures == defaults.LOGIN_MAX_FAILURES == 5
    assert limiter.window_s == defaults.LOGIN_WINDOW_S == 60
    assert limiter.max_failures_per_address == defaults.LOGIN_MAX_FAILURES_PER_ADDRESS
    assert defaults.LOGIN_MAX_FAILURES_PER_ADDRESS > defaults.LOGIN_MAX_FAILURES


def test_blocks_after_max_failures_until_the_oldest_leaves_the_window():
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
def test_other_usernames_and_addresses_are_not_blocked(username, address):
    limiter = throttle(FakeClock())
    fail(limiter, "alice", "10.0.0.1", 3)
    assert limiter.retry_after("alice", "10.0.0.1") > 0
    assert limiter.retry_after(username, address) == 0


def test_per_address_cap_across_usernames():
    clock = FakeClock()
    limiter = throttle(clock)
    for name in ("a", "b", "c", "d", "e"):  # 5 different users, one failure each
        limiter.record_failure(name, "10.0.0.9")
    assert limiter.retry_after("never-tried", "10.0.0.9") == pytest.approx(10)
    assert limiter.retry_after("never-tried", "10.0.0.10") == 0
    clock.now += 10
    assert limiter.retry_after("never-tried", "10.0.0.9") == 0


def test_address_cap_is_never_below_the_per_user_cap():
    limiter = throttle(FakeClock(), max_failures=8, max_failures_per_address=2)
    assert limiter.max_failures_per_address == 8


def test_success_clears_only_its_own_pair():
    limiter = throttle(FakeClock(), max_failures_per_address=6)
    fail(limiter, "alice", "10.0.0.1", 3)
    fail(limiter, "bob", "10.0.0.1", 2)
    limiter.record_success("bob", "10.0.0.1")
    assert limiter.retry_after("alice", "10.0.0.1") > 0  # bob's success resets nothing of alice
    fail(limiter, "bob", "10.0.0.1", 1)  # the address now has 6 failures: its cap
    assert limiter.retry_after("carol", "10.0.0.1") > 0
    limiter.record_success("alice", "10.0.0.1")
    assert limiter.retry_after("carol", "10.0.0.1") > 0  # the address's count is kept


def test_success_after_some_failures_resets_that_pair():
    limiter = throttle(FakeClock())
    fail(limiter, "alice", "10.0.0.1", 2)
    limiter.record_success("alice", "10.0.0.1")
    fail(limiter, "alice", "10.0.0.1", 2)
    assert limiter.retry_after("alice", "10.0.0.1") == 0


def test_expired_entries_are_dropped():
    clock = FakeClock()
    limiter = throttle(clock)
    for index in range(50):
        limiter.record_failure(f"user{index}", f"10.0.{index}.1")
    assert len(limiter) == 100  # one pair and one address each
    clock.now += 11
    limiter.record_failure("late", "10.9.9.9")  # a later call sweeps the expired ones
    assert len(limiter) == 2


def test_memory_stays_bounded_under_a_flood_of_distinct_keys():
    clock = FakeClock()
    limiter = throttle(clock, max_entries=100)
    for index in range(1000):
        limiter.record_failure(f"user{index}", f"10.{index // 256}.{index % 256}.1")
        clock.now += 0.001  # all inside the window
        assert len(limiter) <= 100
    # the newest failures are the ones remembered
    fail(limiter, "user999", "10.3.231.1", 2)
    assert limiter.retry_after("user999", "10.3.231.1") > 0


def test_long_usernames_are_digested():
    limiter = throttle(FakeClock())
    fail(limiter, "x" * 1_000_000, "10.0.0.1", 3)
    assert limiter.retry_after("x" * 1_000_000, "10.0.0.1") > 0
    assert limiter.retry_after("x" * 999_999, "10.0.0.1") == 0
    assert all(len(key[1]) < 100 for key in limiter._failures)


def test_lone_surrogates_in_usernames_do_not_crash():
    limiter = throttle(FakeClock())
    fail(limiter, "\ud800", "10.0.0.1", 3)
    assert limiter.retry_after("\ud800", "10.0.0.1") > 0


def test_concurrent_failures_are_all_counted():
    limiter = throttle(FakeClock(), max_failures=801, max_failures_per_address=801)
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        fail(limiter, "alice", "10.0.0.1", 100)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert limiter.retry_after("alice", "10.0.0.1") == 0  # 800 failures: one below the cap
    limiter.record_failure("alice", "10.0.0.1")
    assert limiter.retry_after("alice", "10.0.0.1") > 0


@pytest.mark.parametrize(
    "limits",
    [{"max_failures": 0}, {"window_s": 0}, {"window_s": -1}, {"max_failures_per_address": 0}],
)
def test_nonsense_limits_are_refused(limits):
    with pytest.raises(ValueError):
        throttle(FakeClock(), **limits)


@pytest.mark.parametrize(
    ("wait_s", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60"), (0, "1")]
)
def test_retry_after_header_is_whole_seconds_rounded_up(wait_s, header):
    assert retry_after_header(wait_s) == header
