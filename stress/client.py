"""Talk to the API as a user does: log in, create the run's workloads, wait for workers."""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests

from stress.errors import RequestFailed, SetupFailed

HTTP_TIMEOUT_S = 60.0
DOWNLOAD_CHUNK_BYTES = 1 << 20


class Client:
    """The API as a user sees it, with one requests.Session per thread."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.token = ""
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(self, method: str, path: str, expected: int = 200, **kwargs: Any) -> requests.Response:
        """Send a request; raise RequestFailed naming the status or exception otherwise."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        try:
            response = self._session().request(
                method, self.url + path, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs
            )
        except requests.RequestException as e:
            raise RequestFailed(type(e).__name__) from e
        if response.status_code != expected:
            raise RequestFailed(f"HTTP {response.status_code}")
        return response

    def download_to(self, path: str, sink: BinaryIO, **kwargs: Any) -> int:
        """Stream a GET's body into `sink` as it arrives; return its size in bytes."""
        size = 0
        with self.call("GET", path, stream=True, **kwargs) as response:
            try:
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    sink.write(chunk)
                    size += len(chunk)
            except requests.RequestException as e:
                raise RequestFailed(type(e).__name__) from e
        return size

    def login(self, user: str, password: str) -> None:
        self.token = self.call("POST", "/login", auth=(user, password)).json()["token"]


def alive_workers(client: Client) -> int:
    return sum(worker["alive"] for worker in client.call("GET", "/status").json()["workers"])


def wait_for_workers(client: Client, count: int, deadline: float) -> None:
    """Wait until `count` workers are alive, so the clock starts on a ready cluster."""
    while alive_workers(client) < count:
        if time.perf_counter() > deadline:
            raise SetupFailed(f"{count} worker(s) did not join in time")
        time.sleep(0.1)


@dataclass(frozen=True)
class Workload:
    workload_id: int
    filter_name: str


def workload_filters(filter_option: str, count: int) -> list[str]:
    """The filter of each workload: --filter both alternates grayscale and blur."""
    if filter_option != "both":
        return [filter_option] * count
    return [("grayscale", "blur")[position % 2] for position in range(count)]


def create_workloads(client: Client, args: argparse.Namespace) -> list[Workload]:
    """Create the run's workloads, under names no earlier run used."""
    run_id = secrets.token_hex(4)
    created = []
    for position, filter_name in enumerate(workload_filters(args.filter, args.workloads)):
        body: dict[str, Any] = {
            "workload_name": f"stress-{run_id}-{position}",
            "filter": filter_name,
        }
        if filter_name == "blur":
            body["radius"] = args.radius
        answer = client.call("POST", "/workloads", 201, json=body).json()
        created.append(Workload(answer["workload_id"], filter_name))
    return created
