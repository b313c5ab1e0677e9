"""The API processes' request counts: a private directory that prometheus_client writes.

prometheus_client picks its multiprocess mode when it is first imported, from
`PROMETHEUS_MULTIPROC_DIR`; so `dpip api` calls this before it imports the API, and gunicorn's
processes, forked later, inherit it. This module imports no part of prometheus_client.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from foundation import defaults

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_http_metrics_dir(data_dir: Path) -> Path:
    """Empty (or make) the data dir's directory of request counts, mode 0700, and point
    prometheus_client at it. An earlier run's files go: their processes are gone, and
    Prometheus takes counters that start again from 0 as a restart."""
    path = data_dir / defaults.HTTP_METRICS_DIR
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(path)
    return path
