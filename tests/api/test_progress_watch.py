"""ProgressWatch: which requests may wait, what wakes them, and that it forgets workloads."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pynng
import pytest

from api.progress_watch import ProgressWatch
from protocol import WorkloadsProgressed
from tests.conftest import wait_until


@pytest.fixture
def make_watch() -> Iterator[Callable[..., ProgressWatch]]:
    """Watches on an address nobody publishes to, closed after the test."""
    made: list[ProgressWatch] = []

    def make(max_waiters: int, address: str = "inproc://nobody-publishes") -> ProgressWatch:
        made.append(ProgressWatch(address, max_waiters))
        return made[-1]

    try:
        yield make
    finally:
        for watch in made:
            watch.close()


def test_waiters_are_capped_and_their_slots_come_back(make_watch):
    watch = make_watch(max_waiters=2)
    with watch.watching(1) as first, watch.watching(1) as second, watch.watching(2) as third:
        assert (first, second, third) == (True, True, False)
    with watch.watching(2) as again:
        assert again


def test_a_message_for_the_workload_wakes_its_waiter_and_no_other(make_watch):
    watch = make_watch(max_waiters=4)
    with watch.watching(7), watch.watching(8):
        version = watch.version(7)
        watch.changed((8, 99))  # 99 is watched by nobody
        assert watch.wait_for_change(7, version, timeout_s=0.01) is False
        watch.changed((7,))
        assert watch.wait_for_change(7, version, timeout_s=0) is True


def test_a_change_before_the_wait_is_not_missed(make_watch):
    watch = make_watch(max_waiters=1)
    with watch.watching(3):
        version = watch.version(3)  # taken before the datastore read ...
        watch.changed((3,))  # ... so a message that lands meanwhile still counts
        assert watch.wait_for_change(3, version, timeout_s=0) is True


def test_a_workload_nobody_waits_on_is_forgotten(make_watch):
    watch = make_watch(max_waiters=1)
    with watch.watching(5):
        watch.changed((5,))
    watch.changed((5,))
    with watch.watching(5):
        assert watch.version(5) == 0  # counting starts afresh: nothing kept in between


def test_the_controllers_messages_wake_a_waiter_over_a_real_socket(make_watch):
    address = f"abstract://dpip-test-progress-{os.getpid()}-{threading.get_ident()}"
    with pynng.Pub0() as publisher:
        publisher.listen(address)
        watch = make_watch(max_waiters=1, address=address)
        with watch.watching(42):
            version = watch.version(42)

            def woken() -> bool:  # sends until the subscriber, dialling meanwhile, hears one
                publisher.send(WorkloadsProgressed((41, 42)).encode())
                return watch.wait_for_change(42, version, timeout_s=0.05)

            assert wait_until(woken, 10, "the progress message to wake the waiter")


def test_stopping_wakes_the_waiters_and_lets_no_new_one_wait(make_watch):
    watch = make_watch(max_waiters=2)
    with watch.watching(9) as granted:
        assert granted
        version = watch.version(9)
        watch.stop_waiting()
        assert watch.wait_for_change(9, version, timeout_s=0) is True
        assert watch.stopping
    with watch.watching(9) as granted_after_stop:
        assert not granted_after_stop
