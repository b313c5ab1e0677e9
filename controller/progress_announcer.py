"""How the controller tells the API processes which workloads had jobs end, so their long
polls answer: over an nng publisher in the shared data dir when the datastore is SQLite
(the API runs on this host), as PostgreSQL notices when it is PostgreSQL (the API may run on
any host that reaches the database)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pynng

import datastore
from protocol import WorkloadsProgressed, progress_events_address

log = logging.getLogger(__name__)


class ProgressAnnouncer:
    """Announces on the channel the datastore implies; never blocks the scheduler for long."""

    def __init__(self, database: Path | str, data_dir: Path, max_message_bytes: int) -> None:
        self._notices: datastore.Connection | None = None
        self._socket: pynng.Pub0 | None = None
        if datastore.is_postgres(database):
            self._notices = datastore.connect(database)
        else:
            self._socket = pynng.Pub0(recv_max_size=max_message_bytes)
            self._socket.listen(progress_events_address(data_dir))

    def announce(self, workload_ids: set[int]) -> None:
        """A pub socket never blocks, with or without readers; a notice is one statement.
        A lost announcement costs a late answer (the API's recheck), never a wrong one."""
        if self._socket is not None:
            with contextlib.suppress(pynng.Closed):
                self._socket.send(WorkloadsProgressed(tuple(sorted(workload_ids))).encode())
        elif self._notices is not None:
            from datastore import progress_notices  # psycopg loads only for PostgreSQL

            try:
                progress_notices.announce(self._notices, workload_ids)  # type: ignore[arg-type]
            except datastore.StoreError as e:  # the database's trouble: the sweep's to mend
                log.warning("%s", e)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._notices is not None:
            self._notices.close()
