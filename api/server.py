"""Serve the API from several processes with gunicorn, sharing one listening socket.

One process with threads convoys on its GIL under load, and waitress copied every
download through Python; gunicorn's threaded workers use sendfile() for image downloads,
and each process has a GIL of its own. The app is built once in the master (a bad config
fails before any fork); each worker process then opens its own SQLite connections lazily
and starts its own controller notifier thread on the first upload.
"""

from __future__ import annotations

import signal

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker

from dpip import defaults


class ApiServer(BaseApplication):
    """gunicorn's master and its `processes` threaded workers, serving one Flask app."""

    def __init__(self, app: Flask, host: str, port: int, processes: int, threads: int) -> None:
        self._app = app
        self._settings = {
            "bind": f"{host}:{port}",
            "workers": processes,
            "threads": threads,
            "worker_class": "gthread",
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
        watch = self._app.extensions["dpip_progress_watch"]

        def stop(signum: int, frame: object) -> None:
            watch.stop_waiting()
            worker.handle_exit(signum, frame)

        signal.signal(signal.SIGTERM, stop)
