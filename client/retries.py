"""When the client sends a request again, and how long it waits first: pure decisions.

A request is resent only when that cannot do twice what the caller asked once: a GET after
any connection failure or a 503, and any request whose connection was never made (refused,
unknown host, connect timeout), since the server then never saw it. A POST whose connection
broke may have been received and acted on (a batch stored, a password changed), so its
failure goes to the caller. A 429 is resent, after its Retry-After, only when the caller
opted in. Waits double from `first_delay_s` up to `max_delay_s`, cut by a random share so
that clients refused together do not come back together; the number of tries and the time
since the first are both bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from client import defaults

SAFE_METHODS = frozenset({"GET", "HEAD"})


class Failure(str, Enum):
    """Why a try failed, as far as resending is concerned."""

    NOT_CONNECTED = "not_connected"  # no connection was made: the server never saw the request
    CONNECTION_LOST = "connection_lost"  # broken after the request may have been sent
    READ_TIMEOUT = "read_timeout"  # the server is slow: asking again would add to its load
    UNAVAILABLE = "unavailable"  # 503
    RATE_LIMITED = "rate_limited"  # 429, with Retry-After


def may_resend(method: str, failure: Failure, wait_on_rate_limit: bool = False) -> bool:
    """Whether a request that failed so may be sent again at all."""
    if failure is Failure.NOT_CONNECTED:
        return True
    if failure in (Failure.CONNECTION_LOST, Failure.UNAVAILABLE):
        return method.upper() in SAFE_METHODS
    if failure is Failure.RATE_LIMITED:
        return wait_on_rate_limit
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one request is retried. `RetryPolicy(attempts=1)` never
    retries."""

    attempts: int = defaults.RETRY_ATTEMPTS  # tries in all, the first included
    first_delay_s: float = defaults.RETRY_FIRST_DELAY_S
    max_delay_s: float = defaults.RETRY_MAX_DELAY_S
    total_s: float = defaults.RETRY_TOTAL_S  # no resend starts later after the first try
    jitter: float = defaults.RETRY_JITTER  # each wait is cut by up to this share

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if min(self.first_delay_s, self.max_delay_s, self.total_s) < 0:
            raise ValueError("delays and the total time must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be from 0 to 1, not {self.jitter}")

    def backoff_s(self, resend: int, draw: float) -> float:
        """The wait before resend number `resend` (0 for the first); `draw` is a random
        number from [0, 1) that picks the cut."""
        nominal = min(self.max_delay_s, self.first_delay_s * 2.0**resend)
        return nominal * (1 - self.jitter * draw)

    def allows(self, tries: int, elapsed_s: float, wait_s: float) -> bool:
        """Whether another try may follow `tries` tries, begun `elapsed_s` ago, after
        waiting `wait_s` more."""
        return tries < self.attempts and elapsed_s + wait_s <= self.total_s
