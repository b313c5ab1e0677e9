"""Slow down password guessing: failed logins are counted per (username, address) and per address.

A client that has failed `max_failures` times for one username from one address in the last
`window_s` seconds, or `max_failures_per_address` times for any usernames from one address, is
refused (429) until its oldest counted failure leaves the window, even with the right
password. Only failures count; a success clears the failures of that (username, address) pair
and nothing else, so it cannot reset the address's count or anyone else's.

The counters live in memory (one API process) and are bounded: expired failures are dropped
on every call, empty entries are swept regularly, and past `max_entries` keys the entries with
the oldest failures are forgotten first. Usernames are kept as digests, so a long username
costs no more memory than a short one.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from dpip import defaults

_Key = tuple[str, bytes]


class LoginThrottle:
    """Thread-safe sliding-window counter of failed logins."""

    def __init__(
        self,
        max_failures: int = defaults.LOGIN_MAX_FAILURES,
        window_s: float = defaults.LOGIN_WINDOW_S,
        max_failures_per_address: int = defaults.LOGIN_MAX_FAILURES_PER_ADDRESS,
        max_entries: int = defaults.LOGIN_MAX_TRACKED_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or max_failures_per_address < 1 or max_entries < 2:
            raise ValueError("login throttle limits must be positive")
        if not window_s > 0:
            raise ValueError("the login throttle window must be positive")
        self.max_failures = max_failures
        self.window_s = float(window_s)
        # The address's cap is never below one username's, or it would be the only limit.
        self.max_failures_per_address = max(max_failures_per_address, max_failures)
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[_Key, deque[float]] = {}
        self._next_sweep = clock() + self.window_s

    @staticmethod
    def _keys(username: str, address: str) -> tuple[_Key, _Key]:
        digest = hashlib.blake2b(username.encode("utf-8", "surrogatepass"), digest_size=16)
        return ("user", address.encode() + b"\0" + digest.digest()), ("address", address.encode())

    def _recent(self, key: _Key, now: float) -> deque[float] | None:
        """The failures of `key` still inside the window (expired ones are dropped)."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this client may try again; 0 when it may try now."""
        now = self._clock()
        pair, per_address = self._keys(username, address)
        wait = 0.0
        limits = ((pair, self.max_failures), (per_address, self.max_failures_per_address))
        with self._lock:
            for key, limit in limits:
                failures = self._recent(key, now)
                if failures is not None and len(failures) >= limit:
                    # Allowed again once enough failures have left the window.
                    release = failures[len(failures) - limit] + self.window_s
                    wait = max(wait, release - now)
        return wait

    def record_failure(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(username, address):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)
            self._sweep(now)

    def record_success(self, username: str, address: str) -> None:
        """Forget this pair's failures; the address's count and other pairs stay as they are."""
        pair, _ = self._keys(username, address)
        with self._lock:
            self._failures.pop(pair, None)

    def __len__(self) -> int:
        """How many keys are tracked (for tests and monitoring)."""
        with self._lock:
            return len(self._failures)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep and len(self._failures) <= self.max_entries:
            return
        self._next_sweep = now + self.window_s
        for key in list(self._failures):
            self._recent(key, now)
        if len(self._failures) > self.max_entries:
            # A flood of distinct keys: forget those that failed longest ago, down to 90 %
            # of the cap so that the next calls do not sort again at once.
            keep = self.max_entries - self.max_entries // 10
            newest_first = sorted(self._failures, key=lambda k: self._failures[k][-1], reverse=True)
            for key in newest_first[keep:]:
                del self._failures[key]


def retry_after_header(wait_s: float) -> str:
    """The Retry-After value (whole seconds, at least 1) for a wait of `wait_s` seconds."""
    return str(max(1, math.ceil(wait_s)))
