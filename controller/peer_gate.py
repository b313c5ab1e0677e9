"""What one nng socket's loop lets through from its peers: bounded refusals, bounded logs.

A refused message (undecodable, a wrong proof or key, an unexpected kind) and a join hello
(it makes the controller keep a challenge) are charged to the sender's connection; a
connection past its budget is closed, and whatever it still had queued is dropped unread,
so a flood costs the loop little and leaves its turn to genuine messages. Refusals are
logged a few per sender address and window, then only counted, and the count logged once
per window. Connections are closed, not addresses, since a worker shares its address with
anyone else on its host; logs are limited per address, since a peer can always reconnect.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, OrderedDict

import pynng

from controller.config import PeerLimits
from controller.token_buckets import TokenBuckets

log = logging.getLogger(__name__)


def _address(pipe: pynng.Pipe) -> str:
    """The peer's address without its port (a reconnect changes the port, not the peer)."""
    try:
        return str(pipe.remote_address).rsplit(":", 1)[0]
    except pynng.NNGException:
        return "an unknown address"


class PeerGate:
    """Charges, closes and logs for one socket's loop (one thread: no locks)."""

    def __init__(self, channel: str, limits: PeerLimits) -> None:
        self._channel = channel
        self._connections = TokenBuckets(
            limits.refusals_per_connection, limits.refusal_window_s, limits.tracked_senders
        )
        self._log_lines = TokenBuckets(
            limits.refusal_log_lines, limits.refusal_log_window_s, limits.tracked_senders
        )
        self._max_tracked = limits.tracked_senders
        self._closed: OrderedDict[int, None] = OrderedDict()  # ids of connections closed here
        self._unlogged: Counter[str] = Counter()
        self._log_window_s = limits.refusal_log_window_s
        self._flush_at = time.monotonic() + self._log_window_s

    def admits(self, message: pynng.Message) -> bool:
        """False for a message of a connection this gate closed (or that is gone)."""
        self._flush(time.monotonic())
        pipe = message.pipe
        if pipe is None:
            return False
        if pipe.id not in self._closed:
            return True
        # pynng adds a pipe it no longer knows back to its table when a queued message of it
        # comes in, and never removes it again: drop it, or each closed peer leaks one.
        getattr(pipe.socket, "_pipes", {}).pop(pipe.id, None)
        return False

    def charge(self, message: pynng.Message) -> None:
        """Count a message against its connection's budget; close the connection past it."""
        pipe = message.pipe
        if pipe is None or self._connections.take(pipe.id, time.monotonic()):
            return
        self._closed[pipe.id] = None
        if len(self._closed) > self._max_tracked:
            self._closed.popitem(last=False)
        self._note(pipe, "closed its connection, over its budget of refused messages")
        with contextlib.suppress(pynng.NNGException):  # closed by the peer meanwhile
            pipe.close()

    def refuse(self, message: pynng.Message, what: str) -> None:
        """Log (within the sender's log budget) and charge a refused message."""
        if message.pipe is not None:
            self._note(message.pipe, f"refused {what}")
        self.charge(message)

    def _note(self, pipe: pynng.Pipe, what: str) -> None:
        address = _address(pipe)
        if self._log_lines.take(address, time.monotonic()):
            log.warning("%s from %s: %s", self._channel, address, what)
        elif address in self._unlogged or len(self._unlogged) < self._max_tracked:
            self._unlogged[address] += 1

    def _flush(self, now: float) -> None:
        """Once per log window, log how many refusals each address had beyond its lines."""
        if now < self._flush_at:
            return
        self._flush_at = now + self._log_window_s
        for address, count in self._unlogged.items():
            log.warning(
                "%s from %s: %d more refusals, not logged one by one", self._channel, address, count
            )
        self._unlogged.clear()
