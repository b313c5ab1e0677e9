"""Serve the API from several processes with gunicorn, sharing one listening socket.

Several processes, because one process with threads convoys on its GIL under load; each
has a GIL of its own, and gunicorn's threaded workers send image downloads with
sendfile(), never copying them through Python. The app is built once in the master (a bad config
fails before any fork); each worker process then opens its own SQLite connections lazily
and starts its own controller notifier thread on the first upload.

gunicorn's docs ask for a buffering proxy in front of its threaded workers, since a slow
client holds a thread; the API must hold on its own, so its workers are `HeadFirstWorker`s:
a thread takes a connection only once its request head is in, and reads the body under
`ClientLimits`.
"""

from __future__ import annotations

import signal

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker

from api import http_metrics
from api.client_input import ClientLimits
from api.head_first_worker import HeadFirstWorker
from foundation import defaults


class ApiServer(BaseApplication):
    """gunicorn's master and its `processes` threaded workers, serving one Flask app.

    `limits`: how slow clients may be, and how many may be connected to each process.
    """

    def __init__(
        self,
        app: Flask,
        host: str,
        port: int,
        processes: int,
        threads: int,
        limits: ClientLimits | None = None,
    ) -> None:
        limits = limits or ClientLimits()
        self._app = app
        self._settings = {
            "bind": f"{host}:{port}",
            "workers": processes,
            "threads": threads,
            "worker_class": HeadFirstWorker.with_limits(limits),
            "worker_connections": limits.max_connections,
            "preload_app": True,
            "keepalive": defaults.API_KEEPALIVE_S,
            "graceful_timeout": defaults.API_GRACEFUL_TIMEOUT_S,
            # Ids and names travel in query strings, credentials in headers: allow the longest
            # request line gunicorn can, and headers of up to 64 KiB (still bounded).
            "limit_request_line": 8190,
            "limit_request_field_size": 65536,
            "accesslog": None,
            "loglevel": "warning",
            "proc_name": "dpip-api",
            "post_worker_init": self._answer_waiters_on_stop,
            "child_exit": lambda server, worker: http_metrics.forget_process(worker.pid),
        }
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._settings.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return self._app

    def _answer_waiters_on_stop(self, worker: Worker) -> None:
        """On SIGTERM a process stops taking requests and lets those in flight finish; a
        long poll (`GET /workloads/{id}?wait=`) would hold the stop up for its whole wait,
        so it answers at once instead."""
        watch = self._app.extensions.get("dpip_progress_watch")
        if watch is None:  # an app without long polls (bench/http_floor.py's empty one)
            return

        def stop(signum: int, frame: object) -> None:
            watch.stop_waiting()
            worker.handle_exit(signum, frame)

        signal.signal(signal.SIGTERM, stop)
