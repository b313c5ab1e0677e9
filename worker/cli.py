"""The `worker` console script."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from foundation import defaults
from foundation.paths import configure_logging, default_data_dir
from foundation.secrets import SecretError, read_secret, secret_from_env
from worker.agent import WorkerAgent
from worker.config import WorkerConfig, parse_controllers
from worker.controller_link import JoinRefusedError


def resolve_join_token(token_file: Path | None) -> str:
    """Find the join token: DPIP_JOIN_TOKEN, then --join-token-file, then the local data dir."""
    path = token_file or default_data_dir() / defaults.JOIN_TOKEN_FILE
    try:
        return secret_from_env("DPIP_JOIN_TOKEN") or read_secret(path)
    except SecretError as e:
        raise click.UsageError(
            f"no join token: set DPIP_JOIN_TOKEN, pass --join-token-file, or run beside the "
            f"controller's data dir ({e}); 'dpip join-token' prints it"
        ) from e


def controllers_option(
    _ctx: click.Context, _param: click.Parameter, value: str
) -> tuple[tuple[str, int], ...]:
    try:
        return parse_controllers(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


@click.command()
@click.option(
    "--controller",
    "controller",
    default=f"{defaults.CONTROLLER_HOST}:{defaults.CONTROLLER_PORT}",
    show_default=True,
    callback=controllers_option,
    help="the controller's HOST:PORT; on PostgreSQL, the active one's and its standbys',"
    " comma-separated (HOST:PORT,HOST:PORT): each join tries them in turn",
)
@click.option("--worker-name", required=True, help="unique name; a re-join keeps the worker's id")
@click.option("--tags", default="", help="comma-separated tags, e.g. gpu,fast")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=None,
    help="jobs at once [default: CPU count]",
)
@click.option(
    "--prefetch",
    type=click.IntRange(0, defaults.MAX_WORKER_PREFETCH),
    default=defaults.WORKER_PREFETCH,
    show_default=True,
    envvar="DPIP_WORKER_PREFETCH",
    show_envvar=True,
    help="jobs taken beyond each slot, waiting ready for it; a free slot runs up to half of"
    " its share (1 + this) as one batch",
)
@click.option(
    "--advertise-host",
    default="127.0.0.1",
    show_default=True,
    help="address the scheduler uses to reach this worker",
)
@click.option(
    "--listen-host", default=None, help="address to bind rpyc to [default: advertise host]"
)
@click.option("--rpc-port", type=int, default=0, show_default=True, help="0: any free port")
@click.option("--join-token-file", type=click.Path(path_type=Path), default=None)
@click.option(
    "--job-time-limit-s",
    type=click.FloatRange(0, min_open=True),
    default=defaults.JOB_TIME_LIMIT_S,
    show_default=True,
    envvar="DPIP_JOB_TIME_LIMIT_S",
    show_envvar=True,
    help="a job running longer is stopped and reported failed (then retried elsewhere)",
)
@click.option(
    "--rpc-max-frame-bytes",
    type=click.IntRange(1024),
    default=defaults.RPC_MAX_FRAME_BYTES,
    show_default=True,
    envvar="DPIP_RPC_MAX_FRAME_BYTES",
    show_envvar=True,
    help="largest rpyc frame the rpc port reads, before or after inflating",
)
@click.option(
    "--rpc-max-connections",
    type=click.IntRange(1),
    default=defaults.RPC_MAX_CONNECTIONS,
    show_default=True,
    envvar="DPIP_RPC_MAX_CONNECTIONS",
    show_envvar=True,
    help="connections the rpc port holds at once; more are closed at accept",
)
@click.option(
    "--rpc-connect-timeout-s",
    type=click.FloatRange(0, min_open=True),
    default=defaults.RPC_CONNECT_TIMEOUT_S,
    show_default=True,
    envvar="DPIP_RPC_CONNECT_TIMEOUT_S",
    show_envvar=True,
    help="a new rpc connection must prove the rpc key this fast, or is closed",
)
def main(
    controller,
    worker_name,
    tags,
    concurrency,
    prefetch,
    advertise_host,
    listen_host,
    rpc_port,
    join_token_file,
    job_time_limit_s,
    rpc_max_frame_bytes,
    rpc_max_connections,
    rpc_connect_timeout_s,
) -> None:
    """Join a DPIP controller and filter images for it."""
    configure_logging()
    (host, port), *others = controller
    config = WorkerConfig(
        controller_host=host,
        controller_port=port,
        other_controllers=tuple(others),
        worker_name=worker_name,
        join_token=resolve_join_token(join_token_file),
        tags=tuple(sorted({t.strip() for t in tags.split(",") if t.strip()})),
        concurrency=concurrency or os.cpu_count() or 1,
        prefetch=prefetch,
        advertise_host=advertise_host,
        listen_host=listen_host or advertise_host,
        rpc_port=rpc_port,
        job_time_limit_s=job_time_limit_s,
        rpc_max_frame_bytes=rpc_max_frame_bytes,
        rpc_max_connections=rpc_max_connections,
        rpc_connect_timeout_s=rpc_connect_timeout_s,
    )
    try:
        WorkerAgent(config).work()
    except JoinRefusedError as e:
        click.echo(f"worker: the controller refused to join: {e}", err=True)
        sys.exit(JoinRefusedError.exit_code)
