"""The image store is private like the data dir: other local users cannot list workload names.

A workload's directory is named after the workload, so a 0755 store told every local user
the names of everyone's workloads.
"""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import Cluster
from tests.security.helpers import database


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _workload_dir(cluster, workload_id: int) -> Path:
    conn = database(cluster)
    try:
        row = conn.execute("SELECT dir_name FROM workloads WHERE id = ?", (workload_id,)).fetchone()
    finally:
        conn.close()
    return Path(cluster.images_dir) / row[0]


def test_the_image_store_and_each_workload_dir_are_0700(cluster, alice):
    assert _mode(Path(cluster.images_dir)) == 0o700
    assert _mode(_workload_dir(cluster, alice.workload_id)) == 0o700


def test_dirs_made_open_by_an_older_version_are_closed_at_start(tmp_path):
    cluster = Cluster(tmp_path)
    old_workload_dir = cluster.images_dir / "1-holiday"
    old_workload_dir.mkdir(parents=True)
    for directory in (cluster.images_dir, old_workload_dir):
        directory.chmod(0o755)
    try:
        cluster.start_api()
    finally:
        cluster.stop_all()
    assert _mode(cluster.images_dir) == 0o700
    assert _mode(old_workload_dir) == 0o700
