"""The local image directory against an S3 image store (SeaweedFS), in the same run.

Each round starts a fresh system of two one-slot workers on loopback, with its images in a
local directory or under a prefix of its own in one SeaweedFS server, and runs
stress_test.py against it; rounds alternate the stores. Every part shares the same cores,
so compare each part's CPU per image: with S3 the workers move the job's bytes themselves,
and the API signs URLs and reads each result back to check it.

    .venv/bin/python bench/s3_store.py [--images 1500] [--size 64x64] [--format png]
        [--batch 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measured_run import measured_run, print_run, stress_args  # noqa: E402
from tests.conftest import Cluster, free_port, running_cluster  # noqa: E402
from tests.seaweedfs_server import S3_BUCKET, SeaweedServer  # noqa: E402

WORKERS = 2
STORES = ("local", "s3")


def parts(cluster: Cluster, seaweed: SeaweedServer) -> dict[str, list[psutil.Process]]:
    """Each part's processes: its own and their children (pool processes, gunicorn's)."""
    found: dict[str, list[psutil.Process]] = {}
    for name, popen in cluster.processes.items():
        part = "workers" if name.startswith("worker") else name
        process = psutil.Process(popen.pid)
        found.setdefault(part, []).extend([process, *process.children(recursive=True)])
    server = psutil.Process(seaweed.pid)
    found["seaweedfs"] = [server, *server.children(recursive=True)]
    return found


def run_once(store: str, seaweed: SeaweedServer, args: argparse.Namespace, keep: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"{store}-", dir=keep))
    env = {"DPIP_LOG_LEVEL": "WARNING"}
    if store == "s3":
        env |= seaweed.store_env(f"bench-{uuid.uuid4().hex}")
    with running_cluster(root, WORKERS, env) as cluster:
        report, per_image = measured_run(cluster.url, args, root, parts(cluster, seaweed))
    print_run(f"store={store}", args, report, per_image)


def main() -> None:
    args = stress_args(__doc__.splitlines()[0], images=1500)
    # Files are kept until the end: on a host whose file system is slow to create files
    # after mass deletes (bench/README.md), a deleted system would slow the next round.
    with (
        tempfile.TemporaryDirectory(prefix="dpip-s3-bench-") as keep,
        SeaweedServer(free_port) as seaweed,
    ):
        seaweed.client().create_bucket(Bucket=S3_BUCKET)
        for round_number in range(args.rounds):
            order = STORES if round_number % 2 == 0 else STORES[::-1]
            for store in order:
                run_once(store, seaweed, args, Path(keep))


if __name__ == "__main__":
    main()
