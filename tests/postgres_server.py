"""A throwaway PostgreSQL server for the tests: the machine's own binaries, on loopback (or
a simulated host's address) only.

PostgreSQL refuses to run as root and the tests run as root, so there the server's commands
run as the `postgres` user (`runuser`), in a temporary directory that user owns. The server
trades durability for speed (no fsync): its data dies with the test session anyway.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from foundation.errors import DPIPError
from tests.netns import in_namespace
from tests.throwaway_server import ThrowawayServer

POSTGRES_ROOT = Path("/usr/lib/postgresql")  # Debian's layout: <version>/bin/{initdb,pg_ctl}
SERVER_USER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT_S = 30  # pg_ctl's wait for "accepting connections"; a start takes about a second
STOP_TIMEOUT_S = 10
COMMAND_TIMEOUT_S = 60  # initdb, the slowest command, takes about a second
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)


class PostgresServerError(DPIPError):
    """Raised when the test PostgreSQL server cannot be set up, started, used or stopped."""


def postgres_bin_dir() -> Path | None:
    """Return the newest installed PostgreSQL's bin directory, or None when none is installed."""
    installed = [initdb.parent for initdb in POSTGRES_ROOT.glob("*/bin/initdb")]
    if not installed:
        return None
    return max(installed, key=lambda bin_dir: _version_key(bin_dir.parent.name))


def _version_key(version: str) -> tuple[int, ...]:
    """Order "9.6" < "15" < "17" numerically (a name that is not a version sorts first)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


class PostgresServer(ThrowawayServer):
    """A PostgreSQL server on `host`:`port` (127.0.0.1 unless another simulated host's address
    in its network namespace `netns`), from `with` until its end, data in a temp dir."""

    def __init__(self, port: int, host: str = HOST, netns: str | None = None) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise PostgresServerError(f"PostgreSQL is not installed (no {POSTGRES_ROOT}/*/bin)")
        self.bin_dir = bin_dir
        self.host = host
        self.port = port
        self.netns = netns
        self.root: Path | None = None

    @property
    def data_dir(self) -> Path:
        if self.root is None:
            raise PostgresServerError("the server is not running (use it in a `with` block)")
        return self.root / "data"

    def url(self, name: str) -> str:
        """Return the URL of database `name` on this server."""
        return f"postgresql://{SERVER_USER}@{self.host}:{self.port}/{name}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name`, empty or a copy of database `template` (which nobody may
        be connected to), and return its URL."""
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
        self._administer(name, create)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing whatever connections to it are still open."""
        drop = sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
        self._administer(name, drop)

    @contextmanager
    def new_database(self, template: str | None = None) -> Iterator[str]:
        """A database of its own for the block (empty, or a copy of database `template`):
        its URL; dropped when the block ends."""
        name = f"db_{uuid.uuid4().hex}"
        url = self.create_database(name, template)
        try:
            yield url
        finally:
            self.drop_database(name)

    def _start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dpip-postgres-"))
        if os.geteuid() == 0:
            server_user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, server_user.pw_uid, server_user.pw_gid)
        data = str(self.data_dir)
        cluster = ["-U", SERVER_USER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        self._run("initdb", "-D", data, *cluster)
        if self.host != HOST:  # initdb trusts loopback only; let in the hosts of its LAN
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")
        socket_dir = shlex.quote(str(self.root))  # pg_ctl hands the options to a shell
        options = f"-h {self.host} -p {self.port} -k {socket_dir} {SERVER_OPTIONS}"
        log_file = str(self.root / "server.log")
        wait = ["-w", "-t", str(START_TIMEOUT_S)]
        self._run("pg_ctl", "start", "-D", data, "-l", log_file, *wait, "-o", options)

    def _stop(self) -> None:
        """Stop the server if it runs, then remove its directory (also after a failed start)."""
        if self.root is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                stop = ["stop", "-D", str(self.data_dir), "-m", "immediate", "-w"]
                self._run("pg_ctl", *stop, "-t", str(STOP_TIMEOUT_S))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _run(self, program: str, *args: str) -> None:
        """Run one of PostgreSQL's programs as the server's user; its output goes in the error."""
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        if self.netns is not None:
            command = in_namespace(self.netns, command)
        try:
            subprocess.run(
                command,
                cwd=self.root,  # the server's user may not enter the caller's directory
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=True,
            )
        except subprocess.CalledProcessError as e:
            raise PostgresServerError(
                f"{program} failed ({e.returncode}): {e.stdout}{e.stderr}{self._server_log()}"
            ) from e
        except subprocess.TimeoutExpired as e:
            raise PostgresServerError(f"{program} ran over {COMMAND_TIMEOUT_S}s") from e

    def _server_log(self) -> str:
        log_path = self.root / "server.log" if self.root else None
        if log_path is None or not log_path.exists():
            return ""
        return f"\nserver log:\n{log_path.read_text(errors='replace')}"

    def _administer(self, name: str, statement: sql.Composed) -> None:
        """Run a statement on database `name` that may not run in a transaction."""
        try:
            with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
                connection.execute(statement)
        except psycopg.Error as e:
            raise PostgresServerError(f"creating or dropping database {name!r} failed: {e}") from e
