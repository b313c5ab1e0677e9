"""A throwaway nginx load balancer for the tests: Debian's binary running the repository's
deploy/nginx/dpip.conf (the configuration user-guide.md shows) inside a minimal main
configuration, everything in a temp dir, stopped with its process group."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from foundation.errors import DPIPError
from tests.conftest import wait_until
from tests.netns import in_namespace
from tests.throwaway_server import ThrowawayServer

DPIP_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "dpip.conf"
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 10

MAIN_CONF = """\
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/dpip.conf;
}}
"""


class NginxError(DPIPError):
    """Raised when the test nginx cannot be configured or started."""


def nginx_binary() -> str | None:
    """nginx's path, or None where it is not installed (.ci/run installs Debian's)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


class NginxServer(ThrowawayServer):
    """nginx on `host`:`port` in network namespace `netns`, balancing over `api_servers`
    ("host:port" each), from `with` until its end. Enter it from a thread inside a host
    that reaches `host`: the `with` waits until nginx accepts connections."""

    def __init__(self, host: str, port: int, api_servers: list[str], netns: str) -> None:
        binary = nginx_binary()
        if binary is None:
            raise NginxError("nginx is not installed")
        self.binary = binary
        self.host, self.port, self.netns = host, port, netns
        self.api_servers = api_servers
        self.url = f"http://{host}:{port}"
        self.root: Path | None = None  # a temp dir of its own while it runs
        self._process: subprocess.Popen | None = None

    def _write_config(self) -> Path:
        servers = "\n    ".join(
            f"server {address} max_fails=1 fail_timeout=5s;" for address in self.api_servers
        )
        dpip_conf = DPIP_CONF.read_text()
        dpip_conf = dpip_conf.replace("@API_SERVERS@", servers)
        dpip_conf = dpip_conf.replace("@LISTEN@", f"{self.host}:{self.port}")
        (self.root / "dpip.conf").write_text(dpip_conf)
        main_conf = self.root / "nginx.conf"
        main_conf.write_text(MAIN_CONF.format(root=self.root))
        return main_conf

    def _start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dpip-nginx-"))
        self.root.chmod(0o755)  # nginx's worker process runs as an unprivileged user
        conf = self._write_config()
        argv = [self.binary, "-p", str(self.root), "-e", str(self.root / "error.log")]
        argv += ["-c", str(conf)]
        checked = subprocess.run(  # nginx -t binds the listening address too
            in_namespace(self.netns, [*argv, "-t"]),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
        if checked.returncode != 0:
            raise NginxError(f"nginx refused the configuration: {checked.stderr}")
        self._process = subprocess.Popen(
            in_namespace(self.netns, [*argv, "-g", "daemon off;"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: master and worker stop together
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        def accepts() -> bool:
            if self._process is not None and self._process.poll() is not None:
                raise NginxError(f"nginx exited: {self.error_log()}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(accepts, START_TIMEOUT_S, "nginx to listen")

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _stop(self) -> None:
        try:
            if self._process is not None:
                try:
                    os.killpg(self._process.pid, signal.SIGTERM)
                    self._process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(self._process.pid, signal.SIGKILL)
                    self._process.wait()
                except ProcessLookupError:
                    pass
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
