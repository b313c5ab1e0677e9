"""Tell the controller that jobs are waiting, without ever delaying an upload.

Uploads only set an event; one background thread turns any number of pokes into one
JobsQueued request. A lost hint costs at most one recovery sweep of the controller.

Given several controllers (an active one and its standbys, on PostgreSQL), the request
socket dials them all: only the active one listens (a standby binds no port), and nng sends
each request to a connected peer, so the hints follow the active controller by themselves.
"""

from __future__ import annotations

import logging
import threading

import pynng

from foundation import defaults
from protocol import JobsQueued

log = logging.getLogger(__name__)


class ControllerNotifier:
    """Coalesces job hints to the controller's request/reply socket."""

    def __init__(self, controller_address: str | None) -> None:
        """`controller_address`: HOST:PORT, or several, comma-separated."""
        self._addresses = [a.strip() for a in (controller_address or "").split(",") if a.strip()]
        self._pending = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Note that jobs were queued; the hint goes out from the background thread."""
        if not self._addresses:
            return
        self._pending.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="controller-notifier", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        with pynng.Req0(
            recv_timeout=defaults.NOTIFY_TIMEOUT_MS,
            send_timeout=defaults.NOTIFY_TIMEOUT_MS,
            resend_time=defaults.NOTIFY_TIMEOUT_MS,
        ) as socket:
            for address in self._addresses:
                socket.dial(f"tcp://{address}", block=False)
            while True:
                self._pending.wait()
                self._pending.clear()
                try:
                    socket.send(JobsQueued().encode())
                    socket.recv()
                except pynng.NNGException as e:
                    log.debug("controller hint not delivered (%s); its sweep will catch up", e)
