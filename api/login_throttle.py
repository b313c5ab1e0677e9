"""Slow down password guessing: failed logins are counted per (username, address) and per address.

A client that has failed `max_failures` times for one username from one address in the last
`window_s` seconds, or `max_failures_per_address` times for any usernames from one address, is
refused (429) until its oldest counted failure leaves the window, even with the right
password. Only failures count; a success clears the failures of that (username, address) pair
and nothing else, so it cannot reset the address's count or anyone else's.

The failures live in the datastore (`datastore.login_failures`), so every API process sharing
it counts them together and a restart keeps them; their timestamps are therefore wall-clock
time. The table is bounded: each recorded failure deletes the expired ones, and past
`max_entries` keys the keys whose newest failure is oldest are forgotten first. Usernames are
kept as digests, so a long username costs no more room than a short one.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from collections.abc import Callable

from datastore import login_failures, transaction
from dpip import defaults


class LoginThrottle:
    """Sliding-window counter of failed logins, kept in the shared datastore."""

    def __init__(
        self,
        connection: Callable[[], sqlite3.Connection],
        max_failures: int = defaults.LOGIN_MAX_FAILURES,
        window_s: float = defaults.LOGIN_WINDOW_S,
        max_failures_per_address: int = defaults.LOGIN_MAX_FAILURES_PER_ADDRESS,
        max_entries: int = defaults.LOGIN_MAX_TRACKED_KEYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`connection` returns the calling thread's datastore connection."""
        if max_failures < 1 or max_failures_per_address < 1 or max_entries < 2:
            raise ValueError("login throttle limits must be positive")
        if not window_s > 0:
            raise ValueError("the login throttle window must be positive")
        self.max_failures = max_failures
        self.window_s = float(window_s)
        # The address's cap is never below one username's, or it would be the only limit.
        self.max_failures_per_address = max(max_failures_per_address, max_failures)
        self.max_entries = max_entries
        self._connection = connection
        self._clock = clock

    @staticmethod
    def _keys(username: str, address: str) -> tuple[bytes, bytes]:
        """The (username, address) pair's key and the address's key, never equal to each other."""
        digest = hashlib.blake2b(username.encode("utf-8", "surrogatepass"), digest_size=16)
        return b"u" + digest.digest() + address.encode(), b"a" + address.encode()

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this client may try again; 0 when it may try now."""
        now = self._clock()
        pair, per_address = self._keys(username, address)
        conn = self._connection()
        wait = 0.0
        for key, limit in ((pair, self.max_failures), (per_address, self.max_failures_per_address)):
            # Allowed again once the `limit`-th newest failure has left the window.
            oldest_counted = login_failures.nth_newest_failure(
                conn, key, limit, after=now - self.window_s
            )
            if oldest_counted is not None:
                wait = max(wait, oldest_counted + self.window_s - now)
        return wait

    def record_failure(self, username: str, address: str) -> None:
        now = self._clock()
        with transaction(self._connection()) as conn:
            login_failures.delete_expired(conn, until=now - self.window_s)
            login_failures.add_failures(conn, self._keys(username, address), now)
            self._forget_past_the_cap(conn)

    def _forget_past_the_cap(self, conn: sqlite3.Connection) -> None:
        """Past `max_entries` keys, forget those whose newest failure is oldest."""
        # Counting rows is cheap and counting keys is not; there are never fewer rows than keys.
        if login_failures.count_failures(conn) <= self.max_entries:
            return
        tracked = login_failures.count_keys(conn)
        if tracked > self.max_entries:
            # A flood of distinct keys: forget down to 90 % of the cap, so that the next
            # failures do not sort the table again at once.
            keep = self.max_entries - self.max_entries // 10
            login_failures.forget_stalest_keys(conn, tracked - keep)

    def record_success(self, username: str, address: str) -> None:
        """Forget this pair's failures; the address's count and other pairs stay as they are."""
        pair, _ = self._keys(username, address)
        login_failures.forget_key(self._connection(), pair)

    def __len__(self) -> int:
        """How many keys are tracked (for tests and monitoring)."""
        return login_failures.count_keys(self._connection())


def retry_after_header(wait_s: float) -> str:
    """The Retry-After value (whole seconds, at least 1) for a wait of `wait_s` seconds."""
    return str(max(1, math.ceil(wait_s)))
