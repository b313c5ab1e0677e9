"""Token buckets per key, in a bounded table: rate limits for senders nobody authenticated."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class TokenBuckets:
    """`capacity` tokens per key at once, refilled at `capacity` per `window_s`.

    The table holds at most `max_keys` keys; the one used longest ago is forgotten first (a
    forgotten key starts full again), so a flood of new keys costs bounded memory.
    """

    def __init__(self, capacity: int, window_s: float, max_keys: int) -> None:
        self._capacity = float(capacity)
        self._refill_per_s = capacity / window_s
        self._max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: Hashable, now: float) -> bool:
        """Take one token of `key`'s bucket; False when it has none left (nothing is taken)."""
        tokens, at = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - at) * self._refill_per_s)
        taken = tokens >= 1
        self._buckets[key] = (tokens - 1 if taken else tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return taken
