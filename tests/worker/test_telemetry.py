"""The worker's own load: its pool processes' CPU counted with its own, found once and
looked for again when one is gone (a search reads every process of the host)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import wait_until
from worker.telemetry import ProcessSampler

BURN = "while True: pass"
BUSY_PERCENT = 30.0  # of one core; a busy child uses close to 100


@contextmanager
def busy_child() -> Iterator[subprocess.Popen]:
    child = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_busy_child_counts_and_its_successor_is_found():
    with busy_child():
        sampler = ProcessSampler(children_refresh_s=3600)  # only a lost child makes it look
        wait_until(lambda: sampler.sample()[0] > BUSY_PERCENT, 10, "the child's CPU to count")
    sampler.sample()  # the child is gone: the next sample looks again
    with busy_child():
        wait_until(lambda: sampler.sample()[0] > BUSY_PERCENT, 10, "its successor's CPU")
