"""The run's session with the API, through DPIP's client: log in, create the run's
workloads, wait for workers. The client never resends a request here: a stress run counts
every failure instead of hiding it."""

from __future__ import annotations

import argparse
import secrets
import time

from client import ApiError, Client, ClientError, RetryPolicy, Workload
from stress.errors import SetupFailed

HTTP_TIMEOUT_S = 60.0


def logged_in(url: str, user: str, password: str) -> Client:
    """A client of the system at `url`, logged in, that never resends a request."""
    client = Client(url, HTTP_TIMEOUT_S, retry=RetryPolicy(attempts=1))
    client.login(user, password)
    return client


def failure(error: ClientError) -> str:
    """A failed request as the run counts it: its HTTP status, or what went wrong on the way."""
    return f"HTTP {error.status}" if isinstance(error, ApiError) else type(error).__name__


def wait_for_workers(client: Client, count: int, deadline: float) -> None:
    """Wait until `count` workers are alive, so the clock starts on a ready cluster."""
    while sum(worker.alive for worker in client.workers()) < count:
        if time.perf_counter() > deadline:
            raise SetupFailed(f"{count} worker(s) did not join in time")
        time.sleep(0.1)


def workload_filters(filter_option: str, count: int) -> list[str]:
    """The filter of each workload: --filter both alternates grayscale and blur."""
    if filter_option != "both":
        return [filter_option] * count
    return [("grayscale", "blur")[position % 2] for position in range(count)]


def create_workloads(client: Client, args: argparse.Namespace) -> list[Workload]:
    """Create the run's workloads, under names no earlier run used."""
    run_id = secrets.token_hex(4)
    return [
        client.create_workload(
            f"stress-{run_id}-{position}",
            filter_name,
            args.radius if filter_name == "blur" else None,
        )
        for position, filter_name in enumerate(workload_filters(args.filter, args.workloads))
    ]
