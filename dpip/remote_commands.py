"""The commands that call a DPIP system's API as its user: log in and out, look at the
system and the workloads, create one. Every call goes through the `client` package."""

from __future__ import annotations

import os
import sys

import click

from client import Client, NotAuthenticated, Worker, Workload
from client.defaults import UPLOAD_THREADS
from dpip.credentials import (
    URL_VARIABLE,
    Credentials,
    CredentialsError,
    credentials_path,
    current_credentials,
    read_stored,
    remove_credentials,
    save_credentials,
)
from dpip.output import json_option, percent, print_json, print_table, when
from dpip.remote_command import RemoteCommand
from foundation import defaults

DEFAULT_URL = f"http://{defaults.API_HOST}:{defaults.API_PORT}"


def connect(upload_threads: int = UPLOAD_THREADS) -> Client:
    """A client of the API as the logged-in user (`DPIP_URL`, `DPIP_TOKEN`, the file)."""
    credentials = current_credentials(os.environ)
    try:
        return Client(credentials.url, credentials.token, upload_threads=upload_threads)
    except ValueError as e:  # the URL
        raise CredentialsError(str(e)) from e


def _default_url() -> str:
    """`DPIP_URL`, else the last login's URL, else the API's default address."""
    if os.environ.get(URL_VARIABLE):
        return os.environ[URL_VARIABLE]
    stored = read_stored(credentials_path(os.environ))
    return stored.url if stored else DEFAULT_URL


def _check_url(ctx: click.Context, param: click.Parameter, url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} does not start with http:// or https://")
    return url


def _read_password(from_stdin: bool) -> str:
    if not from_stdin:
        return click.prompt("Password", hide_input=True, err=True)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("--password-stdin: standard input holds no password")
    return password


@click.command(cls=RemoteCommand)
@click.argument("url", required=False, callback=_check_url)
@click.option("--user", "username", help="The user to log in as [default: asked].")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def login(url: str | None, username: str | None, password_stdin: bool, as_json: bool) -> None:
    """Log in to the API at URL and keep its token for the next commands.

    URL defaults to $DPIP_URL, else the URL of the last login, else http://127.0.0.1:8080.
    """
    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --user: standard input holds the password")
    url = url or _default_url()
    username = username or click.prompt("User", err=True)
    password = _read_password(password_stdin)
    with Client(url) as client:
        user = client.login(username, password)
        path = credentials_path(os.environ)
        save_credentials(path, Credentials(client.url, client.token))
    if as_json:
        print_json({"url": client.url, "user": user, "credentials": path})
    else:
        click.echo(f"logged in to {client.url} as {user.username} ({user.role})")


@click.command(cls=RemoteCommand)
@json_option
def logout(as_json: bool) -> None:
    """Revoke the token on the API and forget it.

    A token the API no longer takes is forgotten all the same; if the API cannot be
    reached, the token is kept (it still works) and the command fails.
    """
    path = credentials_path(os.environ)
    stored = read_stored(path)
    with connect() as client:
        token = client.token
        try:
            client.logout()
            revoked = True
        except NotAuthenticated:
            revoked = False
    removed = stored is not None and stored.token == token and remove_credentials(path)
    if as_json:
        print_json({"url": client.url, "revoked": revoked, "credentials_removed": removed})
    else:
        click.echo(f"logged out of {client.url}" if revoked else "the token was no longer valid")


def _workers_table(status_workers: tuple[Worker, ...]) -> None:
    rows = [
        (
            worker.name,
            "yes" if worker.alive else "no",
            worker.running_jobs,
            worker.concurrency,
            round(worker.host_cpu_percent),
            round(worker.host_memory_percent),
            ",".join(worker.tags) or "-",
            when(worker.last_seen),
        )
        for worker in status_workers
    ]
    headers = ("NAME", "ALIVE", "JOBS", "SLOTS", "CPU%", "MEM%", "TAGS", "LAST SEEN")
    print_table(headers, rows, "no workers")


@click.command(cls=RemoteCommand)
@json_option
def status(as_json: bool) -> None:
    """Show your active workloads and the cluster's workers."""
    with connect() as client:
        system = client.status()
    if as_json:
        print_json(system)
        return
    click.echo(f"{system.system_name} at {client.url}, server time {when(system.server_time)}")
    click.echo()
    rows = [
        (
            workload.id,
            workload.name,
            workload.status,
            percent(workload.progress),
            workload.running_jobs,
        )
        for workload in system.active_workloads
    ]
    print_table(("ID", "NAME", "STATUS", "PROGRESS", "RUNNING"), rows, "no active workloads")
    click.echo()
    _workers_table(system.workers)


@click.command(cls=RemoteCommand)
@json_option
def workers(as_json: bool) -> None:
    """List the cluster's workers and their load."""
    with connect() as client:
        known = client.workers()
    if as_json:
        print_json({"workers": known})
    else:
        _workers_table(known)


def _filter_text(workload: Workload) -> str:
    return (
        workload.filter if workload.radius is None else f"{workload.filter} r={workload.radius:g}"
    )


@click.command(cls=RemoteCommand)
@json_option
def workloads(as_json: bool) -> None:
    """List your workloads (every user's for admins), oldest first."""
    with connect() as client:
        listed = client.workloads()
    if as_json:
        print_json({"workloads": listed})
        return
    rows = [
        (
            workload.id,
            workload.name,
            _filter_text(workload),
            workload.status,
            workload.images.done,
            workload.images.failed,
            workload.images.total,
            when(workload.created_at),
        )
        for workload in listed
    ]
    headers = ("ID", "NAME", "FILTER", "STATUS", "DONE", "FAILED", "IMAGES", "CREATED")
    print_table(headers, rows, "no workloads")


@click.group()
def workload() -> None:
    """Create a workload, or show one."""


def _tags(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in (value or "").split(",") if tag.strip())


filter_option = click.option(
    "--filter",
    "filter_name",
    default="grayscale",
    show_default=True,
    help="The filter: grayscale or blur.",
)
radius_option = click.option("--radius", type=float, help="The blur radius, 0 to 100 [default: 2].")
tags_option = click.option(
    "--tags", callback=_tags, help="Comma-separated; only workers with all of them run its jobs."
)


def _describe(workload: Workload) -> list[str]:
    """The workload as lines of text: its settings, progress and failed images."""
    counts = workload.images
    lines = [
        f"workload  {workload.id}  {workload.name}",
        f"filter    {_filter_text(workload)}",
        f"tags      {', '.join(workload.tags) or '-'}",
        f"status    {workload.status} ({percent(workload.progress)})",
        f"images    {counts.total}: {counts.done} done, {counts.failed} failed,"
        f" {counts.running} running, {counts.queued} queued",
        f"created   {when(workload.created_at)}",
    ]
    lines += [
        f"failed    image {image.image_id}: {image.error}" for image in workload.failed_images or ()
    ]
    return lines


@workload.command("create", cls=RemoteCommand)
@click.argument("name", required=False)
@filter_option
@radius_option
@tags_option
@json_option
def workload_create(
    name: str | None, filter_name: str, radius: float | None, tags: tuple[str, ...], as_json: bool
) -> None:
    """Create a workload; the API names it when NAME is not given."""
    with connect() as client:
        created = client.create_workload(name, filter_name, radius, tags)
    if as_json:
        print_json(created)
    else:
        click.echo(f"created workload {created.id} {created.name} ({_filter_text(created)})")


@workload.command("show", cls=RemoteCommand)
@click.argument("workload_id", metavar="ID", type=click.IntRange(min=0))
@json_option
def workload_show(workload_id: int, as_json: bool) -> None:
    """Show a workload: its settings, progress and failed images."""
    with connect() as client:
        shown = client.workload(workload_id)
    if as_json:
        print_json(shown)
    else:
        click.echo("\n".join(_describe(shown)))


@workload.command("delete", cls=RemoteCommand)
@click.argument("workload_id", metavar="ID", type=click.IntRange(min=0))
def workload_delete(workload_id: int) -> None:
    """Delete a workload with its images, results and jobs."""
    with connect() as client:
        client.delete_workload(workload_id)
    click.echo(f"deleted workload {workload_id}")


REMOTE_COMMANDS = (login, logout, status, workers, workloads, workload)
