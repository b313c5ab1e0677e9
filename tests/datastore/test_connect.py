"""Opening the datastore: processes that create it at the same moment all get it."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import datastore

ROUNDS = 10
PROCESSES = 3


def open_at(path: Path, start_at: float, results: multiprocessing.Queue) -> None:
    while time.time() < start_at:  # line the processes up on one moment
        pass
    try:
        datastore.connect(path).close()
        results.put("ok")
    except Exception as e:  # reported to the test, which names it
        results.put(repr(e))


def test_processes_creating_the_datastore_at_once_all_open_it(tmp_path):
    context = multiprocessing.get_context("fork")
    outcomes = []
    for round_number in range(ROUNDS):
        path = tmp_path / f"round-{round_number}.sqlite3"
        results = context.Queue()
        start_at = time.time() + 0.2
        processes = [
            context.Process(target=open_at, args=(path, start_at, results))
            for _ in range(PROCESSES)
        ]
        try:
            for process in processes:
                process.start()
            outcomes += [results.get(timeout=60) for _ in processes]
        finally:
            for process in processes:
                process.join(timeout=60)
                if process.is_alive():
                    process.kill()
    assert outcomes == ["ok"] * ROUNDS * PROCESSES
