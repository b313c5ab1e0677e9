"""`dpip up`: run the controller, the API and local workers as children, and stop them all."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dpip import defaults

log = logging.getLogger(__name__)


@dataclass
class Child:
    """One supervised process and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)


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


@dataclass
class Supervisor:
    """Starts children in order, restarts a crashed one, and stops all on SIGINT/SIGTERM."""

    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, {**os.environ, **(extra_env or {})})
        self.children.append(child)
        return child

    def run(self, ready: callable) -> int:
        """Start every child, call `ready()`, then watch until a signal arrives."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        try:
            for child in self.children:
                child.start()
            ready()
            while not self.stopping.wait(0.5):
                self._restart_crashed()
        finally:
            self._stop_all()
        return 0

    def _restart_crashed(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is None:
                continue
            if child.restarts >= defaults.SUPERVISOR_MAX_RESTARTS:
                log.error("%s exited with %s too often; stopping", child.name, code)
                self.stopping.set()
                return
            child.restarts += 1
            log.warning("%s exited with %s; restarting", child.name, code)
            child.start()

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + defaults.SUPERVISOR_STOP_GRACE_S
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
