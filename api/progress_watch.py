"""Let a request wait for a workload's next finished image instead of being polled for it.

The controller announces which workloads had jobs end: over an nng socket in the data dir
(`protocol.WorkloadsProgressed`) when the datastore is SQLite, as PostgreSQL notices when
it is PostgreSQL (`datastore.progress_notices`), so API processes on other hosts hear them.
Each API process listens once, on a thread started by the first waiting request (so after
gunicorn forks), and wakes the requests that wait on those workloads. A message only says
"look again": the waiting request re-reads the datastore, so a lost message costs a late
answer (bounded by the recheck interval), never a wrong one; a listener that reconnected
wakes every waiter, since what it missed is not replayed.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
from collections import Counter
from collections.abc import Iterator

import pynng

from datastore import is_postgres
from protocol import DecodeError, WorkloadsProgressed, decode

log = logging.getLogger(__name__)


class ProgressWatch:
    """Change counters of the workloads that requests of this process wait on.

    `source`: an nng address (the controller's publisher) or a PostgreSQL URL (its notices).
    """

    def __init__(self, source: str, max_waiters: int) -> None:
        self._source = source
        self._max_waiters = max_waiters
        self._changed = threading.Condition()
        self._versions: dict[int, int] = {}  # workload id → progress messages seen
        self._watchers: Counter[int] = Counter()  # workload id → requests waiting on it
        self._thread: threading.Thread | None = None
        self._socket: pynng.Sub0 | None = None
        self._stop_listening = threading.Event()
        self._stopping = False

    @contextlib.contextmanager
    def watching(self, workload_id: int) -> Iterator[bool]:
        """Watch a workload meanwhile; yield False when this request may not wait, because
        waiting requests are capped so that they never hold every thread of the process."""
        with self._changed:
            granted = not self._stopping and self._watchers.total() < self._max_waiters
            if granted:
                self._watchers[workload_id] += 1
                self._versions.setdefault(workload_id, 0)
                if self._thread is None:
                    self._start_listening()
        try:
            yield granted
        finally:
            if granted:
                with self._changed:
                    self._watchers[workload_id] -= 1
                    if not self._watchers[workload_id]:
                        del self._watchers[workload_id], self._versions[workload_id]

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop_waiting(self) -> None:
        """The process is stopping: wake every waiting request, and let no new one wait."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def version(self, workload_id: int) -> int:
        """A mark to take before reading a watched workload, for `wait_for_change`."""
        with self._changed:
            return self._versions[workload_id]

    def wait_for_change(self, workload_id: int, version: int, timeout_s: float) -> bool:
        """Block until a progress message for the workload came after `version` was taken,
        or the process is stopping."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._stopping or self._versions[workload_id] != version, timeout_s
            )

    def changed(self, workload_ids: tuple[int, ...] | None) -> None:
        """Count a progress message and wake the requests that wait on its workloads
        (None: on every workload)."""
        with self._changed:
            if workload_ids is None:
                workload_ids = tuple(self._versions)
            watched = [wid for wid in workload_ids if wid in self._versions]
            for workload_id in watched:
                self._versions[workload_id] += 1
            if watched:
                self._changed.notify_all()

    def close(self) -> None:
        """Stop listening. Runs at exit too: nng must not be torn down under a blocked recv."""
        self._stop_listening.set()
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _start_listening(self) -> None:
        if is_postgres(self._source):
            from datastore import progress_notices  # psycopg loads only for PostgreSQL

            listen = functools.partial(
                progress_notices.listen, self._source, self.changed, self._stop_listening
            )
        else:
            # Redial a restarted controller within 0.1 s (nng's default is 1 s): messages
            # sent before the subscription is back are lost, and only the recheck would
            # notice.
            self._socket = pynng.Sub0(reconnect_time_min=100, reconnect_time_max=100)
            self._socket.subscribe(b"")
            self._socket.dial(self._source, block=False)  # redials on its own after a restart
            listen = functools.partial(self._listen, self._socket)
        self._thread = threading.Thread(target=listen, name="progress-watch", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # runs before pynng's own exit handler, registered earlier

    def _listen(self, socket: pynng.Sub0) -> None:
        while True:
            try:
                message = decode(socket.recv(), WorkloadsProgressed)
            except pynng.Closed:
                return
            except DecodeError as e:
                log.warning("dropped a bad progress message: %s", e)
                continue
            self.changed(message.workload_ids)
