"""Where the controller publishes workload progress to the API processes on its host.

The API and the controller share the data dir, so the address derives from it and needs no
port or discovery: an ipc socket file in the data dir, which survives controller restarts.
A path too long for a Unix socket falls back to an abstract socket named after it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SOCKET_FILE = "progress.ipc"
MAX_IPC_PATH_BYTES = 100  # sun_path holds 108 bytes on Linux, the terminator included


def progress_events_address(data_dir: Path) -> str:
    """The nng address of the controller's progress publisher for `data_dir`."""
    path = os.fsencode(data_dir.resolve() / SOCKET_FILE)
    if len(path) <= MAX_IPC_PATH_BYTES:
        return f"ipc://{os.fsdecode(path)}"
    return f"abstract://dpip-progress-{hashlib.sha256(path).hexdigest()[:32]}"
