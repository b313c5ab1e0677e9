"""Sample every process of a spawned system with py-spy while the timed part runs: one flame
graph per process, named by its part, to see where each part's CPU per image goes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stress.system import System, processes_by_part

SAMPLES_PER_S = 100
STOP_TIMEOUT_S = 60.0  # py-spy writes its flame graph when interrupted


def py_spy_command() -> str | None:
    """py-spy beside this Python (a virtual environment's), or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def profiled(system: System, directory: Path | None) -> Iterator[None]:
    """Record each process of the system's parts into `directory` while the block runs
    (without pausing them: --nonblocking); nothing when `directory` is None."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                *(str(py_spy_command()), "record", "--nonblocking"),
                *("--rate", str(SAMPLES_PER_S), "--pid", str(process.pid)),
                *("--output", str(directory / f"{part}-{process.pid}.svg")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for part, processes in processes_by_part(system)
        for process in processes
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()
