"""A workload's images as a whole: upload many in one request, list them page by page, and
download them in one streamed zip."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_jwt_extended import jwt_required

from api.access import require_person, visible_workload
from api.batch_input import batch_members
from api.batch_members import BatchLimits, Member
from api.config import ApiConfig
from api.db import get_db
from api.errors import APIError, bad_request
from api.images import image_store
from api.inputs import ID_CONVERTER, parse_id
from api.originals import StagedOriginal, store_originals
from api.zip_stream import ZipEntry, stream_zip
from datastore import workloads
from foundation import defaults
from imagestore import ImageName, ImageStore
from imaging import ImageInfo, ImageRejected, extension_of, inspect_image
from protocol import JobStatus

bp = Blueprint("workload_images", __name__)

WORKLOAD_IMAGES = f"/workloads/<{ID_CONVERTER}:workload_id>"
MANIFEST_NAME = "manifest.json"
DEFLATED_FORMATS = frozenset({"BMP", "TIFF"})  # usually uncompressed; the others are stored
IMAGE_KINDS = ("original", "filtered")


def _batch_limits(config: ApiConfig) -> BatchLimits:
    return BatchLimits(
        max_images=config.max_batch_images,
        max_bytes=config.max_batch_bytes,
        max_image_bytes=config.max_upload_bytes,
        max_filename_chars=config.max_filename_chars,
    )


def _inspected(member: Member, data: bytes, config: ApiConfig) -> ImageInfo:
    """The single upload's check; a refusal names the image (400, whatever the reason)."""
    try:
        return inspect_image(data, config.max_image_pixels, config.image_cost_limits)
    except ImageRejected as e:
        raise APIError(400, e.code, f"{member.label}: {e}") from e


@bp.post(f"{WORKLOAD_IMAGES}/images")
@jwt_required()
def upload_batch(workload_id: int):
    """Store every image of the batch, or none: each is checked and staged first, then one
    transaction records them all."""
    workload = visible_workload(require_person(), workload_id)
    config = current_app.config["DPIP"]
    store = image_store()
    with (
        store.scratch(workload["dir_name"]) as spool,
        batch_members(spool, _batch_limits(config)) as members,
        ExitStack() as staging,
    ):
        if not members:
            raise bad_request(
                "the batch holds no image: send file parts 'data', or a zip or tar of images",
                "missing_field",
            )
        accepted = []
        for member in members:
            data = member.read()
            info = _inspected(member, data, config)
            staged = staging.enter_context(store.put(workload["dir_name"], io.BytesIO(data)))
            accepted.append(StagedOriginal(staged, info, len(data), member.filename))
        numbers = store_originals(workload, accepted)
    images = [
        {"image_id": number, "filename": original.filename}
        for number, original in zip(numbers, accepted, strict=True)
    ]
    return jsonify(workload_id=workload["id"], images=images), 201


def _status_filter(value: str | None) -> JobStatus | None:
    if value is None or value == "":
        return None
    try:
        return JobStatus(value)
    except ValueError:
        statuses = ", ".join(status.value for status in JobStatus)
        raise bad_request(f"'status' must be one of {statuses}", "invalid_field") from None


def _page_limit(config: ApiConfig) -> int:
    if "limit" not in request.args:
        return min(defaults.IMAGES_PAGE_DEFAULT, config.max_images_page)
    limit = parse_id(request.args, "limit")
    if not 1 <= limit <= config.max_images_page:
        raise bad_request(f"'limit' must be from 1 to {config.max_images_page}", "invalid_field")
    return limit


def _describe_image(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "image_id": row["number"],
        "filename": row["filename"],
        "size": row["size"],
        "format": row["format"],
        "width": row["width"],
        "height": row["height"],
        "status": row["status"],
        "error": row["error"] or None,
    }


@bp.get(f"{WORKLOAD_IMAGES}/images")
@jwt_required()
def list_images(workload_id: int):
    workload = visible_workload(require_person(), workload_id)
    status = _status_filter(request.args.get("status"))
    offset = parse_id(request.args, "offset") if "offset" in request.args else 0
    limit = _page_limit(current_app.config["DPIP"])
    rows = workloads.list_images(get_db(), workload["id"], status, offset, limit)
    return jsonify(
        workload_id=workload["id"],
        status=status,
        total=workloads.count_images(get_db(), workload["id"], status),
        offset=offset,
        limit=limit,
        images=[_describe_image(row) for row in rows],
    )


def _archive_entries(
    store: ImageStore, directory: str, kind: str, rows: list[sqlite3.Row]
) -> Iterator[ZipEntry]:
    """The zip's image entries, `000042.jpg`, each file looked up only when its turn comes
    (after the request, as the zip is sent)."""
    for row in rows:
        extension = extension_of(row["format"])
        path = store.open(directory, ImageName(row["number"], kind, extension))
        yield ZipEntry(f"{row['number']:06d}.{extension}", path, row["format"] in DEFLATED_FORMATS)


@bp.get(f"{WORKLOAD_IMAGES}/archive")
@jwt_required()
def download_archive(workload_id: int):
    """Stream a zip of the images ready now (one datastore read), then `manifest.json`."""
    workload = visible_workload(require_person(), workload_id)
    kind = request.args.get("type") or "filtered"
    if kind not in IMAGE_KINDS:
        raise bad_request("'type' must be 'original' or 'filtered'", "invalid_field")
    rows = workloads.list_images(get_db(), workload["id"])
    ready = [row for row in rows if kind == "original" or row["status"] == JobStatus.DONE]
    entries = _archive_entries(image_store(), workload["dir_name"], kind, ready)
    manifest = (
        {
            "image_id": row["number"],
            "filename": row["filename"],
            "status": row["status"],
            "error": row["error"] or None,
        }
        for row in rows
    )
    head = {"workload_id": workload["id"], "type": kind}
    chunks = stream_zip(entries, MANIFEST_NAME, head, manifest, defaults.ARCHIVE_CHUNK_BYTES)
    response = Response(chunks, mimetype="application/zip")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="workload-{workload["id"]}-{kind}.zip"'
    )
    return response
