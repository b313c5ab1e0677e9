"""Token buckets per key: a burst, a steady refill, and a bounded table."""

from __future__ import annotations

from controller.token_buckets import TokenBuckets


def test_a_key_gets_its_burst_then_nothing_until_it_refills() -> None:
    buckets = TokenBuckets(capacity=3, window_s=3.0, max_keys=10)
    assert [buckets.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("a", 0.5) is False  # half a token back
    assert buckets.take("a", 1.0) is True  # one a second
    assert buckets.take("a", 1.0) is False


def test_a_refill_never_exceeds_the_burst() -> None:
    buckets = TokenBuckets(capacity=2, window_s=1.0, max_keys=10)
    assert buckets.take("a", 0.0)
    assert [buckets.take("a", 1000.0) for _ in range(3)] == [True, True, False]


def test_keys_are_counted_apart() -> None:
    buckets = TokenBuckets(capacity=1, window_s=60.0, max_keys=10)
    assert buckets.take("a", 0.0)
    assert not buckets.take("a", 0.0)
    assert buckets.take("b", 0.0)


def test_the_table_forgets_the_key_used_longest_ago() -> None:
    buckets = TokenBuckets(capacity=1, window_s=60.0, max_keys=2)
    assert buckets.take("a", 0.0)
    assert buckets.take("b", 0.0)
    assert not buckets.take("a", 0.0)  # "a" is now the most recently used
    assert buckets.take("c", 0.0)  # ... so "b" goes
    assert buckets.take("b", 0.0)  # forgotten: full again
    assert not buckets.take("c", 0.0)
