"""The steps `upload`, `wait`, `download` and `process` are made of, each with its bar and
a report of what it did (what `--json` prints)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from client import Client, UploadedImage, Workload
from dpip.download_names import KeptNumbered, PlacedFile, place_entries
from dpip.image_files import FoundFiles
from dpip.progress import FinishedBar, progress_bar
from dpip.resume import plan_upload


@dataclass(frozen=True)
class UploadReport:
    """What an upload found and sent: `uploaded` counts the images sent by this run."""

    workload_id: int
    found: int
    already_uploaded: int
    uploaded: int
    not_images: int
    images: tuple[UploadedImage, ...]


@dataclass(frozen=True)
class DownloadReport:
    """What a download wrote into `directory` (with its `manifest.json`)."""

    workload_id: int
    type: str
    directory: Path
    files: tuple[PlacedFile, ...]
    kept_numbered: tuple[KeptNumbered, ...]
    not_in_archive: int  # images of the workload without an entry (not done, for filtered)


def upload_paths(
    client: Client, workload_id: int, found: FoundFiles, batch: int, in_flight: int
) -> UploadReport:
    """Send the images `found` that the workload does not hold yet (by kept filename and
    size; see `dpip.resume`), each named by its path relative to its argument."""
    plan = plan_upload(found.images, client.images(workload_id))
    items = [(image.name, image.path) for image in plan.to_send]
    with progress_bar(len(items), "upload") as bar:
        uploaded = client.upload(
            workload_id,
            items,
            batch=batch,
            in_flight=in_flight,
            on_batch=lambda stored: bar.update(len(stored)),
        )
    return UploadReport(
        workload_id,
        found=len(found.images),
        already_uploaded=len(plan.already_uploaded),
        uploaded=len(uploaded),
        not_images=len(found.not_images),
        images=tuple(uploaded),
    )


def wait_for(client: Client, workload_id: int, timeout_s: float | None) -> Workload:
    """Wait until the workload is completed, its finished images on a bar; raises the
    client's WaitTimedOut after `timeout_s`."""
    with FinishedBar("filter") as bar:
        return client.wait(
            workload_id,
            timeout_s,
            on_progress=lambda workload: bar.show(workload.images.finished, workload.images.total),
        )


def download_into(
    client: Client, workload_id: int, out_dir: Path, kind: str, original_names: bool
) -> DownloadReport:
    """Download the workload's archive of `kind` images into `out_dir`, named by number or
    by their original filenames. It is unpacked in a folder of its own inside `out_dir`
    first, so no entry overwrites another before it is moved to its name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dpip-download-", dir=out_dir))
    try:
        manifest = client.download_all(workload_id, staging, kind)
        placement = place_entries(staging, out_dir, manifest, original_names)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return DownloadReport(
        workload_id,
        kind,
        out_dir,
        placement.files,
        placement.kept_numbered,
        not_in_archive=len(manifest.images) - len(placement.files),
    )
