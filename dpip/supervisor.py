"""`dpip up`: run the controller, the API and local workers as children, and stop them all.

Each child runs in a process group of its own, so a terminal's Ctrl-C reaches only the
supervisor, which then drives the stop: workers first (they finish and deliver their running
jobs, which needs the API and the controller), then the API, then the controller. A second
signal during the stop kills every child's group at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from foundation import defaults

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the supervisor dies (even by SIGKILL), since
    a child in its own process group no longer shares the supervisor's fate otherwise."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such guarantee
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    drains: bool = False  # finishes its work on SIGTERM, so it stops first
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None  # when a crashed child is started again

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            process_group=0,  # the terminal's Ctrl-C must not reach it directly
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


def program(name: str) -> list[str]:
    """The console script `name` of this environment, or its module run by this Python."""
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def restart_delay_s(restarts: int) -> float:
    """How long to wait before the `restarts`-th restart: doubling from the first, capped."""
    return min(
        defaults.SUPERVISOR_RESTART_DELAY_S * 2 ** (restarts - 1),
        defaults.SUPERVISOR_MAX_RESTART_DELAY_S,
    )


@dataclass
class Supervisor:
    """Starts children in order, restarts a crashed one, and drains all on SIGINT/SIGTERM."""

    drain_timeout_s: float = defaults.SUPERVISOR_DRAIN_S
    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _hurry: threading.Event = field(default_factory=threading.Event)

    def add(
        self,
        name: str,
        argv: list[str],
        extra_env: dict[str, str] | None = None,
        *,
        drains: bool = False,
    ) -> Child:
        child = Child(name, argv, {**os.environ, **(extra_env or {})}, drains)
        self.children.append(child)
        return child

    def run(self, ready: Callable[[], None]) -> int:
        """Start every child, call `ready()`, then watch until a signal arrives."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        try:
            for child in self.children:
                child.start()
            ready()
            while not self.stopping.wait(defaults.SUPERVISOR_WATCH_S):
                self._restart_crashed()
        finally:
            self._stop_all()
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stopping.is_set():
            self._hurry.set()
            return
        self.stopping.set()

    def _restart_crashed(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    log.warning("restarting %s", child.name)
                    child.start()
                continue
            code = child.process.poll()
            if code is None:
                continue
            if now - child.started_at >= defaults.SUPERVISOR_STABLE_AFTER_S:
                child.restarts = 0  # it ran well for a while: a new crash starts a new count
            if child.restarts >= defaults.SUPERVISOR_MAX_RESTARTS:
                log.error("%s exited with %s too often; stopping", child.name, code)
                self.stopping.set()
                return
            child.restarts += 1
            delay_s = restart_delay_s(child.restarts)
            log.warning("%s exited with %s; restarting in %.1f s", child.name, code, delay_s)
            child.restart_at = now + delay_s

    def _stop_all(self) -> None:
        """Drain the workers, then stop the other children in reverse start order."""
        draining = [c for c in self.children if c.drains]
        others = [c for c in reversed(self.children) if not c.drains]
        if any(child.running() for child in draining):
            log.warning(
                "stopping: workers finish their running jobs first (up to %.0f s);"
                " press Ctrl-C again to stop at once",
                self.drain_timeout_s,
            )
        self._stop(draining, self.drain_timeout_s)
        for child in others:
            self._stop([child], defaults.SUPERVISOR_STOP_GRACE_S)

    def _stop(self, children: list[Child], grace_s: float) -> None:
        """SIGTERM `children` and wait for them; kill them at the deadline or on a second
        signal."""
        for child in children:
            if child.running():
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in children:
            while child.running():
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0 or self._hurry.is_set():
                    why = "second signal" if self._hurry.is_set() else "did not stop in time"
                    log.warning("%s: %s; killing it", child.name, why)
                    child.signal_group(signal.SIGKILL)
                    child.process.wait()
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=min(remaining_s, defaults.SUPERVISOR_WATCH_S))
            if child.process is not None:
                log.info("%s stopped (exit code %s)", child.name, child.process.returncode)
