"""The `dpip` console script: run the system or its parts, and administer users."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import click

import datastore
from dpip.bootstrap import prepare_data_dir
from dpip.remote_commands import REMOTE_COMMANDS
from dpip.transfer_commands import TRANSFER_COMMANDS
from foundation import defaults
from foundation.errors import DPIPError
from foundation.paths import configure_logging, default_data_dir, default_images_dir

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="datastore and secrets [default: $DPIP_DATA_DIR or ./dpip-data]",
)
images_dir_option = click.option(
    "--images-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="image store [default: $DPIP_IMAGES_DIR or ./images]",
)


def _dirs(data_dir: Path | None, images_dir: Path | None) -> tuple[Path, Path]:
    return (
        (data_dir or default_data_dir()).resolve(),
        (images_dir or default_images_dir()).resolve(),
    )


def _database_url() -> str:
    """PostgreSQL's URL from DPIP_DATABASE_URL; empty: the SQLite file in the data dir."""
    return os.environ.get("DPIP_DATABASE_URL", defaults.DATABASE_URL)


def reachable(bind_host: str, wildcard_alias: str = "127.0.0.1") -> str:
    """The address to dial for a server bound to `bind_host` (a wildcard is not dialable)."""
    return wildcard_alias if bind_host in ("0.0.0.0", "::", "") else bind_host


def _controller_addresses(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """`value`, once checked to be HOST:PORT or several of them, comma-separated."""
    from worker.config import parse_controllers

    try:
        parse_controllers(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    return value


def _announce_admin(password: str | None, data_dir: Path) -> None:
    if password is None:
        return
    if os.environ.get("DPIP_ADMIN_PASSWORD"):
        click.echo(
            f"First start: user '{defaults.ADMIN_USERNAME}' created, "
            "password from DPIP_ADMIN_PASSWORD"
        )
        return
    click.echo(f"First start: user '{defaults.ADMIN_USERNAME}' with password: {password}")
    click.echo(f"(stored in {data_dir / defaults.ADMIN_PASSWORD_FILE}, mode 0600)")


class _Commands(click.Group):
    """Turns DPIP's own errors into a one-line message and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DPIPError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=_Commands)
def main() -> None:
    """DPIP: distributed and parallel image processing."""
    configure_logging()


for remote_command in (*REMOTE_COMMANDS, *TRANSFER_COMMANDS):  # the API's users' commands
    main.add_command(remote_command)


@main.command()
@click.option("--host", default=defaults.API_HOST, show_default=True)
@click.option("--port", type=int, default=defaults.API_PORT, show_default=True)
@click.option(
    "--controller-host",
    default=defaults.CONTROLLER_HOST,
    show_default=True,
    help="address the controller binds to; 0.0.0.0 lets remote workers join",
)
@click.option("--controller-port", type=int, default=defaults.CONTROLLER_PORT, show_default=True)
@click.option(
    "--workers", type=click.IntRange(0, 64), default=defaults.LOCAL_WORKERS, show_default=True
)
@click.option(
    "--worker-concurrency",
    type=click.IntRange(1, 1024),
    default=None,
    help="jobs at once per local worker [default: CPU count / workers]",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=defaults.SUPERVISOR_DRAIN_S,
    show_default=True,
    help="seconds the workers get to finish their running jobs on Ctrl-C or SIGTERM",
)
@data_dir_option
@images_dir_option
def up(
    host,
    port,
    controller_host,
    controller_port,
    workers,
    worker_concurrency,
    drain_timeout,
    data_dir,
    images_dir,
) -> None:
    """Start the API, the controller with its scheduler, and local workers.

    Ctrl-C (or SIGTERM) drains: the workers finish and deliver their running jobs, then the
    API and the controller stop. A second Ctrl-C stops everything at once.
    """
    from dpip.supervisor import Supervisor, program, wait_for_port

    data_dir, images_dir = _dirs(data_dir, images_dir)
    local_controller = f"{reachable(controller_host)}:{controller_port}"
    boot = prepare_data_dir(data_dir, _database_url())
    common = ["--data-dir", str(data_dir)]
    supervisor = Supervisor(drain_timeout)
    supervisor.add(
        "controller",
        [
            *program("dpip"),
            "controller",
            "--host",
            controller_host,
            "--port",
            str(controller_port),
            "--api-url",
            f"http://{reachable(host, socket.getfqdn())}:{port}",
            *common,
        ],
    )
    supervisor.add(
        "api",
        [
            *program("dpip"),
            "api",
            "--host",
            host,
            "--port",
            str(port),
            "--controller",
            local_controller,
            "--images-dir",
            str(images_dir),
            *common,
        ],
    )
    concurrency = worker_concurrency or max(1, (os.cpu_count() or 1) // max(workers, 1))
    for index in range(1, workers + 1):
        supervisor.add(
            f"worker-{index}",
            [
                *program("worker"),
                "--controller",
                local_controller,
                "--worker-name",
                f"local-{index}",
                "--concurrency",
                str(concurrency),
            ],
            {"DPIP_JOIN_TOKEN": boot.join_token},
            drains=True,
        )

    def ready() -> None:
        if not wait_for_port(host, port, 30):
            click.echo("the API did not start; see the log above", err=True)
            supervisor.stopping.set()
            return
        click.echo(f"DPIP is up: http://{host}:{port}  ({workers} local worker(s))")
        _announce_admin(boot.admin_password, data_dir)
        click.echo("Press Ctrl-C to stop.")

    sys.exit(supervisor.run(ready))


@main.command()
@click.option("--host", default=defaults.API_HOST, show_default=True)
@click.option("--port", type=int, default=defaults.API_PORT, show_default=True)
@click.option(
    "--controller",
    default=f"{defaults.CONTROLLER_HOST}:{defaults.CONTROLLER_PORT}",
    show_default=True,
    callback=_controller_addresses,
    help="HOST:PORT of the controller, told about new jobs; on PostgreSQL, the active one's"
    " and its standbys', comma-separated (HOST:PORT,HOST:PORT)",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=defaults.API_PROCESSES,
    show_default=True,
    help="server processes sharing the port",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=defaults.API_THREADS,
    show_default=True,
    help="request threads per process",
)
@data_dir_option
@images_dir_option
def api(host, port, controller, processes, threads, data_dir, images_dir) -> None:
    """Run the REST API alone.

    On SQLite it shares the data dir with the controller, on its host. On PostgreSQL
    (DPIP_DATABASE_URL) it may run on a host of its own, and several may run behind a load
    balancer, sharing DPIP_JWT_SECRET and the images dir (DPIP_PROXY_HOPS=1 behind nginx):
    see "Several API hosts" in user-guide.md.

    DPIP_IMAGE_STORE=s3://bucket/prefix keeps the images in an S3-compatible store instead
    (endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY);
    --images-dir then holds only scratch files: see "Images in an S3 object store".
    """
    from dpip.http_metrics_dir import prepare_http_metrics_dir

    data_dir, images_dir = _dirs(data_dir, images_dir)
    prepare_http_metrics_dir(data_dir)  # before the API's modules import prometheus_client
    from api import ApiConfig, create_app
    from api.client_input import ClientLimits
    from api.server import ApiServer
    from foundation.memory import keep_freed_memory
    from foundation.settings import from_env
    from imaging import CostLimits

    boot = prepare_data_dir(data_dir, _database_url())
    _announce_admin(boot.admin_password, data_dir)
    config = from_env(
        ApiConfig,
        os.environ,  # DPIP_MAX_UPLOAD_BYTES and the like
        data_dir=data_dir,
        images_dir=images_dir,
        jwt_secret=boot.jwt_secret,
        controller_address=controller,
        metrics_token=boot.metrics_token,
        image_cost_limits=from_env(CostLimits, os.environ),
        max_waiting_requests=threads // 2,
        database_sessions=threads,  # one per request thread: no request waits for one
    )
    click.echo(f"API listening on http://{host}:{port} ({processes} processes)")
    keep_freed_memory()  # before gunicorn forks: its processes inherit the setting
    limits = from_env(ClientLimits, os.environ)  # DPIP_API_HEAD_TIMEOUT_S and the like
    ApiServer(create_app(config), host, port, processes, threads, limits).run()


@main.command()
@click.option(
    "--host",
    default=defaults.CONTROLLER_HOST,
    show_default=True,
    help="address the nng sockets bind to",
)
@click.option("--port", type=int, default=defaults.CONTROLLER_PORT, show_default=True)
@click.option("--telemetry-port", type=int, default=0, help="0: any free port")
@click.option("--broadcast-port", type=int, default=0, help="0: any free port")
@click.option(
    "--api-url",
    default=f"http://{defaults.API_HOST}:{defaults.API_PORT}",
    show_default=True,
    help="where workers reach the API",
)
@click.option(
    "--telemetry-interval-ms",
    type=click.IntRange(50, 60000),
    default=defaults.TELEMETRY_INTERVAL_MS,
    show_default=True,
)
@data_dir_option
def controller(
    host, port, telemetry_port, broadcast_port, api_url, telemetry_interval_ms, data_dir
) -> None:
    """Run the controller and scheduler alone.

    On SQLite it shares the data dir with the API, on its host. On PostgreSQL
    (DPIP_DATABASE_URL) it may run on a host of its own, with the API hosts' DPIP_JWT_SECRET
    and --api-url their load balancer's address: see "Several API hosts" in user-guide.md.

    On PostgreSQL a second controller (same DPIP_DATABASE_URL, DPIP_JWT_SECRET and
    DPIP_JOIN_TOKEN, on another host) is a standby: it binds no port and waits until the
    active one is gone (killed: at once; its host cut off: within about 11 s), then takes
    over. Give workers and APIs both addresses (--controller A:PORT,B:PORT): see "A
    standby controller" in user-guide.md.
    """
    from controller import Controller, ControllerConfig

    data_dir, _ = _dirs(data_dir, None)
    boot = prepare_data_dir(data_dir, _database_url())
    _announce_admin(boot.admin_password, data_dir)
    hub = Controller(
        ControllerConfig(
            data_dir=data_dir,
            database_url=_database_url(),
            api_url=api_url,
            join_token=boot.join_token,
            jwt_secret=boot.jwt_secret,
            host=host,
            port=port,
            telemetry_port=telemetry_port,
            broadcast_port=broadcast_port,
            telemetry_interval_ms=telemetry_interval_ms,
        )
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: hub.request_stop())
    if not hub.wait_until_active():
        return  # stopped while a standby
    hub.start()
    hub.wait()
    hub.stop()
    if hub.failed:  # logged; `dpip up` (or a service manager) starts it afresh
        sys.exit(1)


@main.command("join-token")
@data_dir_option
def join_token(data_dir) -> None:
    """Print the token workers need to join this cluster."""
    click.echo(prepare_data_dir(_dirs(data_dir, None)[0], _database_url()).join_token)


@main.group()
def user() -> None:
    """Manage users."""


def _password_from(stdin: bool) -> str:
    from accounts import WeakPassword, check_password

    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return check_password(password)
    except WeakPassword as e:
        raise click.UsageError(str(e)) from e


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="give the user the admin role")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@data_dir_option
def user_add(name, admin, password_stdin, data_dir) -> None:
    """Create a user."""
    from accounts import create_user
    from protocol import UserRole

    data_dir, _ = _dirs(data_dir, None)
    boot = prepare_data_dir(data_dir, _database_url())
    password = _password_from(password_stdin)
    conn = datastore.connect(boot.database)
    try:
        create_user(conn, name, password, UserRole.ADMIN if admin else UserRole.USER)
    finally:
        conn.close()
    click.echo(f"created user {name!r} ({'admin' if admin else 'user'})")


@user.command("list")
@data_dir_option
def user_list(data_dir) -> None:
    """List users and their roles."""
    from datastore import users

    data_dir, _ = _dirs(data_dir, None)
    conn = datastore.connect(prepare_data_dir(data_dir, _database_url()).database)
    try:
        for row in users.list_users(conn):
            click.echo(f"{row['username']}\t{row['role']}")
    finally:
        conn.close()


@user.command("delete")
@click.argument("name")
@data_dir_option
@images_dir_option
def user_delete(name, data_dir, images_dir) -> None:
    """Delete a user with its workloads and images."""
    from accounts import delete_user
    from imagestore import open_image_store

    data_dir, images_dir = _dirs(data_dir, images_dir)
    conn = datastore.connect(datastore.location(data_dir, _database_url()))
    try:
        location = os.environ.get("DPIP_IMAGE_STORE", defaults.IMAGE_STORE)
        deleted = delete_user(conn, open_image_store(location, images_dir), name)
    finally:
        conn.close()
    click.echo(f"deleted user {name!r} and {deleted} workload(s)")
