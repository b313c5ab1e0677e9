"""Slow down password guessing: failed logins count per (username, address), per address and
per account (username, from any address).

A client that has failed `max_failures` times for one username from one address in the last
`window_s` seconds, or `max_failures_per_address` times for any usernames from one address, is
refused (429) until its oldest counted failure leaves the window, even with the right
password. Only failures count; a success clears the failures of that (username, address) pair
and nothing else, so it cannot reset the address's count or anyone else's.

Many addresses get past those counts, so each account also has an `AccountDelay`: after its
first failures (from any addresses) every further attempt must wait a delay that doubles per
failure, up to a cap, measured from the account's last failure. The owner is never locked
out for longer than the cap; a success resets the account. An attempt is counted against its
account when it is admitted (`admit`), in the transaction that checked the delay, so attempts
sent at once when a delay ends cannot all get through.

The failures live in the datastore (`datastore.login_failures`), so every API process sharing
it counts them together and a restart keeps them; their timestamps are therefore wall-clock
time. The tables are bounded: each recorded failure deletes the expired rows, and past
`max_entries` keys (or accounts) the ones whose newest failure is oldest are forgotten first.
Usernames are kept as digests, so a long username costs no more room than a short one.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from datastore import Connection, login_failures, transaction
from foundation import defaults


@dataclass(frozen=True)
class AccountDelay:
    """How long an account's failed logins, from any addresses, make its next attempt wait."""

    max_failures: int = defaults.LOGIN_ACCOUNT_MAX_FAILURES  # failures before any wait
    first_delay_s: float = defaults.LOGIN_ACCOUNT_FIRST_DELAY_S
    max_delay_s: float = defaults.LOGIN_ACCOUNT_MAX_DELAY_S
    memory_s: float = defaults.LOGIN_ACCOUNT_MEMORY_S  # failures are forgotten this long after

    def __post_init__(self) -> None:
        if self.max_failures < 1 or not 0 < self.first_delay_s <= self.max_delay_s:
            raise ValueError("account login delays must be positive, the first at most the cap")
        if self.memory_s < self.max_delay_s:
            raise ValueError("an account's failures must be remembered at least the longest delay")

    def delay_s(self, failures: int) -> float:
        """The wait after the last of `failures`: none below `max_failures`, then the first
        delay, doubling with each further failure, up to `max_delay_s`."""
        if failures < self.max_failures:
            return 0.0
        doublings = min(failures - self.max_failures, 64)  # 2**64 s is past any cap
        return min(self.first_delay_s * 2**doublings, self.max_delay_s)


class LoginThrottle:
    """Counters of failed logins, kept in the shared datastore."""

    def __init__(
        self,
        connection: Callable[[], Connection],
        max_failures: int = defaults.LOGIN_MAX_FAILURES,
        window_s: float = defaults.LOGIN_WINDOW_S,
        max_failures_per_address: int = defaults.LOGIN_MAX_FAILURES_PER_ADDRESS,
        max_entries: int = defaults.LOGIN_MAX_TRACKED_KEYS,
        account_delay: AccountDelay = AccountDelay(),
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
        self.account_delay = account_delay
        self._connection = connection
        self._clock = clock

    @staticmethod
    def _account(username: str) -> bytes:
        """The account's key: a digest of the username."""
        return hashlib.blake2b(username.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def _keys(self, username: str, address: str) -> tuple[bytes, bytes]:
        """The (username, address) pair's key and the address's key, never equal to each other."""
        return b"u" + self._account(username) + address.encode(), b"a" + address.encode()

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this client may try again; 0 when it may try now."""
        return self._wait_s(self._connection(), username, address, self._clock())

    def admit(self, username: str, address: str) -> float:
        """Return the seconds until this client may try again, or 0 and count its attempt
        as a failure of the account until `record_success` clears it."""
        now = self._clock()
        with transaction(self._connection()) as conn:
            wait = self._wait_s(conn, username, address, now)
            if wait <= 0:
                login_failures.delete_expired_accounts(
                    conn, until=now - self.account_delay.memory_s
                )
                login_failures.add_account_failure(conn, self._account(username), now)
                self._forget_accounts_past_the_cap(conn)
        return wait

    def _wait_s(self, conn: Connection, username: str, address: str, now: float) -> float:
        pair, per_address = self._keys(username, address)
        wait = self._account_wait_s(conn, username, now)
        for key, limit in ((pair, self.max_failures), (per_address, self.max_failures_per_address)):
            # Allowed again once the `limit`-th newest failure has left the window.
            oldest_counted = login_failures.nth_newest_failure(
                conn, key, limit, after=now - self.window_s
            )
            if oldest_counted is not None:
                wait = max(wait, oldest_counted + self.window_s - now)
        return max(wait, 0.0)

    def _account_wait_s(self, conn: Connection, username: str, now: float) -> float:
        """Seconds until the account's delay after its last failure ends (may be negative)."""
        failures, last_failed_at = login_failures.account_failures(
            conn, self._account(username), after=now - self.account_delay.memory_s
        )
        return last_failed_at + self.account_delay.delay_s(failures) - now

    def record_failure(self, username: str, address: str) -> None:
        """Count a failure against the (username, address) pair and the address (`admit`
        counted it against the account already)."""
        now = self._clock()
        with transaction(self._connection()) as conn:
            login_failures.delete_expired(conn, until=now - self.window_s)
            login_failures.add_failures(conn, self._keys(username, address), now)
            self._forget_past_the_cap(conn)

    def _forget_past_the_cap(self, conn: Connection) -> None:
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

    def _forget_accounts_past_the_cap(self, conn: Connection) -> None:
        """Past `max_entries` accounts, forget those whose last failure is oldest."""
        tracked = login_failures.count_accounts(conn)
        if tracked > self.max_entries:
            keep = self.max_entries - self.max_entries // 10  # as for the keys above
            login_failures.forget_stalest_accounts(conn, tracked - keep)

    def record_success(self, username: str, address: str) -> None:
        """Forget this pair's and this account's failures; the address's count and other
        pairs stay as they are."""
        pair, _ = self._keys(username, address)
        with transaction(self._connection()) as conn:
            login_failures.forget_key(conn, pair)
            login_failures.forget_account(conn, self._account(username))

    def __len__(self) -> int:
        """How many keys are tracked (for tests and monitoring)."""
        return login_failures.count_keys(self._connection())


def retry_after_header(wait_s: float) -> str:
    """The Retry-After value (whole seconds, at least 1) for a wait of `wait_s` seconds."""
    return str(max(1, math.ceil(wait_s)))
