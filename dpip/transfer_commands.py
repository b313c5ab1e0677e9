"""The commands that move images: upload a folder, wait for the filter, download the
results, or all of it at once (`process`). Their exit statuses: 0 when every image is
filtered, 3 when the workload completed with failed images, 4 when the wait timed out."""

from __future__ import annotations

from pathlib import Path

import click

from client import WaitTimedOut, Workload
from client.defaults import UPLOAD_BATCH_IMAGES, UPLOAD_THREADS
from dpip.exits import CompletedWithFailures, StillRunning
from dpip.image_files import NoImagesFound, find_images
from dpip.output import json_option, print_json
from dpip.remote_command import RemoteCommand
from dpip.remote_commands import connect, filter_option, radius_option, tags_option
from dpip.transfers import (
    DownloadReport,
    UploadReport,
    download_into,
    upload_paths,
    wait_for,
)

paths_argument = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
batch_option = click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=UPLOAD_BATCH_IMAGES,
    show_default=True,
    help="Images per request.",
)
in_flight_option = click.option(
    "--in-flight",
    type=click.IntRange(1, 64),
    default=UPLOAD_THREADS,
    show_default=True,
    help="Requests sent at once; 1 numbers the images in the order found.",
)
timeout_option = click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    help="Seconds to wait at most (exit status 4 past them) [default: no limit].",
)
out_option = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory to write into (made if missing).",
)
type_option = click.option(
    "--type",
    "kind",
    type=click.Choice(["filtered", "original"]),
    default="filtered",
    show_default=True,
)
names_option = click.option(
    "--names",
    type=click.Choice(["number", "original"]),
    default="number",
    show_default=True,
    help="Name files by number (000042.png) or by the path each was uploaded under.",
)
workload_argument = click.argument("workload_id", metavar="WORKLOAD", type=click.IntRange(min=0))


def _upload_line(report: UploadReport) -> str:
    line = f"uploaded {report.uploaded} image(s) to workload {report.workload_id}"
    if report.already_uploaded:
        line += f", {report.already_uploaded} already there"
    if report.not_images:
        line += f"; skipped {report.not_images} file(s) that are not images"
    return line


def _download_lines(report: DownloadReport) -> list[str]:
    lines = [
        f"downloaded {len(report.files)} {report.type} image(s) into {report.directory}"
        f" (manifest.json lists every image)"
    ]
    lines += [
        f"image {kept.image_id} kept its number: {kept.reason}" for kept in report.kept_numbered
    ]
    if report.not_in_archive:
        lines.append(f"{report.not_in_archive} image(s) have no {report.type} file (not done)")
    return lines


def _completed_line(workload: Workload) -> str:
    counts = workload.images
    return f"workload {workload.id} completed: {counts.done} filtered, {counts.failed} failed"


def _check_outcome(workload: Workload) -> None:
    """Raise the exit of a completed workload with failed images."""
    if workload.images.failed:
        raise CompletedWithFailures(
            f"workload {workload.id} completed with {workload.images.failed} failed image(s)"
            f" of {workload.images.total}; `dpip workload show {workload.id}` says why"
        )


@click.command(cls=RemoteCommand)
@workload_argument
@paths_argument
@batch_option
@in_flight_option
@json_option
def upload(
    workload_id: int, paths: tuple[Path, ...], batch: int, in_flight: int, as_json: bool
) -> None:
    """Upload the images in PATHS (files, and directories recursively) to WORKLOAD.

    Images are recognised by their content; other files are skipped. Each is sent under
    its path relative to the argument it came from. Run it again after an interruption:
    images the workload holds already (same name and size) are not sent again.
    """
    found = find_images(paths)
    with connect(in_flight) as client:
        report = upload_paths(client, workload_id, found, batch, in_flight)
    if as_json:
        print_json(report)
    else:
        click.echo(_upload_line(report))


@click.command(cls=RemoteCommand)
@workload_argument
@timeout_option
@json_option
def wait(workload_id: int, timeout_s: float | None, as_json: bool) -> None:
    """Wait until WORKLOAD is completed: exit status 0 when every image is filtered, 3 when
    some failed, 4 when it is still running after --timeout seconds."""
    with connect() as client:
        try:
            workload = wait_for(client, workload_id, timeout_s)
        except WaitTimedOut as e:
            if as_json:
                print_json(e.workload)
            raise StillRunning(str(e)) from e
    if as_json:
        print_json(workload)
    else:
        click.echo(_completed_line(workload))
    _check_outcome(workload)


@click.command(cls=RemoteCommand)
@workload_argument
@out_option
@type_option
@names_option
@json_option
def download(workload_id: int, out_dir: Path, kind: str, names: str, as_json: bool) -> None:
    """Download WORKLOAD's results (or originals) into a directory, with manifest.json.

    Filtered results are those ready when the command asks; run `dpip wait` first.
    """
    with connect() as client:
        report = download_into(client, workload_id, out_dir, kind, names == "original")
    if as_json:
        print_json(report)
    else:
        click.echo("\n".join(_download_lines(report)))


@click.command(cls=RemoteCommand)
@paths_argument
@filter_option
@radius_option
@tags_option
@out_option
@names_option
@click.option("--name", help="The workload's name [default: the API's].")
@timeout_option
@batch_option
@in_flight_option
@json_option
def process(
    paths: tuple[Path, ...],
    filter_name: str,
    radius: float | None,
    tags: tuple[str, ...],
    out_dir: Path,
    names: str,
    name: str | None,
    timeout_s: float | None,
    batch: int,
    in_flight: int,
    as_json: bool,
) -> None:
    """Filter the images in PATHS into --out: create a workload, upload, wait, download.

    Exit status 0 when every image is filtered, 3 when some failed (the others are
    downloaded), 4 when the workload is still running after --timeout seconds.
    """
    found = find_images(paths)
    if not found.images:
        raise NoImagesFound(f"no images in {', '.join(map(str, paths))}")
    with connect(in_flight) as client:
        created = client.create_workload(name, filter_name, radius, tags)
        if not as_json:
            click.echo(f"created workload {created.id} {created.name}")
        uploaded = upload_paths(client, created.id, found, batch, in_flight)
        if not as_json:
            click.echo(_upload_line(uploaded))
        try:
            workload = wait_for(client, created.id, timeout_s)
        except WaitTimedOut as e:
            if as_json:
                print_json({"workload": e.workload, "upload": uploaded, "download": None})
            raise StillRunning(f"{e}; `dpip wait {created.id}`, then `dpip download`") from e
        if not as_json:
            click.echo(_completed_line(workload))
        downloaded = download_into(client, created.id, out_dir, "filtered", names == "original")
    if as_json:
        print_json({"workload": workload, "upload": uploaded, "download": downloaded})
    else:
        click.echo("\n".join(_download_lines(downloaded)))
    _check_outcome(workload)


TRANSFER_COMMANDS = (upload, wait, download, process)
