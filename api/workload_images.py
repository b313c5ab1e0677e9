"""A workload's images as a whole: upload many in one request, list them page by page, and
download them in one streamed zip."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_jwt_extended import jwt_required

from api.access import require_person, visible_workload
from api.batch_input import (
    IMAGE_FIELD,
    MULTIPART_MEDIA_TYPE,
    TAR_MEDIA_TYPE,
    ZIP_MEDIA_TYPE,
    batch_members,
)
from api.batch_members import BatchLimits, Member
from api.config import ApiConfig
from api.db import get_db
from api.errors import APIError, bad_request
from api.images import IMAGE_KINDS, image_store
from api.inputs import ID_CONVERTER, parse_id
from api.openapi import (
    COUNT,
    ID,
    TEXT,
    TEXT_OR_NULL,
    WORKER_FORBIDDEN,
    Answer,
    binary,
    choice,
    component,
    describe,
    json_answer,
    object_of,
    query,
)
from api.originals import StagedOriginal, store_originals
from api.zip_stream import ZipEntry, stream_zip
from datastore import Row, workloads
from foundation import defaults
from imagestore import ImageName, ImageStore
from imaging import ImageInfo, ImageRejected, extension_of, inspect_image
from imaging.inspection import ALLOWED_FORMATS
from protocol import JobStatus

bp = Blueprint("workload_images", __name__)

WORKLOAD_IMAGES = f"/workloads/<{ID_CONVERTER}:workload_id>"
MANIFEST_NAME = "manifest.json"
DEFLATED_FORMATS = frozenset({"BMP", "TIFF"})  # usually uncompressed; the others are stored

NO_SUCH_WORKLOAD = "`not_found`: no such workload, or not yours."
JOB_STATUS = choice(status.value for status in JobStatus)
COUNT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
IMAGE = component(
    "Image",
    object_of(
        {
            "image_id": COUNT,
            "filename": TEXT_OR_NULL,
            "size": COUNT_OR_NULL | {"description": "the original's bytes"},
            "format": choice(sorted(ALLOWED_FORMATS)),
            "width": COUNT,
            "height": COUNT,
            "status": JOB_STATUS,
            "error": TEXT_OR_NULL | {"description": "why it failed, if it did"},
        }
    ),
)
BATCH_BODY = {
    MULTIPART_MEDIA_TYPE: {
        "type": "object",
        "properties": {
            IMAGE_FIELD: {
                "type": "array",
                "items": binary("image/*"),
                "description": "one file part per image, in order",
            }
        },
        "required": [IMAGE_FIELD],
    },
    ZIP_MEDIA_TYPE: binary(ZIP_MEDIA_TYPE),
    TAR_MEDIA_TYPE: binary(TAR_MEDIA_TYPE),
}


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
@describe(
    "Upload many originals at once",
    "images",
    description="A multipart form with one file part `data` per image, or a zip or an"
    " uncompressed tar of the images (directories skipped; a member's path is its filename)."
    " All or nothing: every image is checked before any is stored. They are numbered in the"
    " order sent. A 400 names the first bad image by its index and filename.",
    body=BATCH_BODY,
    body_required=True,
    answers={
        201: json_answer(
            "The images, in the order sent",
            object_of(
                {
                    "workload_id": COUNT,
                    "images": {
                        "type": "array",
                        "items": object_of({"image_id": COUNT, "filename": TEXT_OR_NULL}),
                    },
                }
            ),
        )
    },
    errors={
        400: "`invalid_batch`, `missing_field` (no image), `not_an_image`, `image_too_complex`,"
        " `image_too_large` (one image over the limits).",
        403: WORKER_FORBIDDEN,
        404: NO_SUCH_WORKLOAD,
        413: "`too_many_images`; `payload_too_large`: the body, or its images unpacked, over"
        " the batch limit (`DPIP_MAX_BATCH_BYTES`).",
        415: "`unsupported_media_type`: not a multipart form, a zip or a tar.",
        507: "`insufficient_storage`: the image store's disk is full.",
    },
)
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
        store.staging() as staging,
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
            staged = staging.add(store.put(workload["dir_name"], io.BytesIO(data)))
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


def _describe_image(row: Row) -> dict[str, Any]:
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
@describe(
    "List a workload's images, page by page",
    "images",
    parameters=(
        query("status", JOB_STATUS, "only the images of this status"),
        query("offset", ID | {"default": 0}, "images to skip"),
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": defaults.MAX_IMAGES_PAGE}
            | {"default": defaults.IMAGES_PAGE_DEFAULT},
            "images per page (at most `DPIP_MAX_IMAGES_PAGE`)",
        ),
    ),
    answers={
        200: json_answer(
            "A page of the images, in number order",
            object_of(
                {
                    "workload_id": COUNT,
                    "status": {"anyOf": [JOB_STATUS, {"type": "null"}]},
                    "total": COUNT | {"description": "the images the `status` filter matches"},
                    "offset": COUNT,
                    "limit": COUNT,
                    "images": {"type": "array", "items": IMAGE},
                }
            ),
        )
    },
    errors={
        400: "`invalid_field`: `status`, `offset` or `limit`.",
        403: WORKER_FORBIDDEN,
        404: NO_SUCH_WORKLOAD,
    },
)
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
    store: ImageStore, directory: str, kind: str, rows: list[Row]
) -> Iterator[ZipEntry]:
    """The zip's image entries, `000042.jpg`, each file looked up only when its turn comes
    (after the request, as the zip is sent)."""
    for row in rows:
        extension = extension_of(row["format"])
        stored = store.open(directory, ImageName(row["number"], kind, extension))
        yield ZipEntry(
            f"{row['number']:06d}.{extension}", stored, row["format"] in DEFLATED_FORMATS
        )


@bp.get(f"{WORKLOAD_IMAGES}/archive")
@describe(
    "Download the workload's images as one zip",
    "images",
    description="Streamed as it is written: one entry per image ready when the request came"
    " (`000042.jpg`), then `manifest.json` listing every image with its status.",
    parameters=(
        query("type", choice(IMAGE_KINDS) | {"default": "filtered"}, "results or originals"),
    ),
    answers={
        200: Answer(
            "The zip",
            {ZIP_MEDIA_TYPE: binary(ZIP_MEDIA_TYPE)},
            {"Content-Disposition": {"schema": TEXT, "description": "the zip's file name"}},
        )
    },
    errors={
        400: "`invalid_field`: `type`.",
        403: WORKER_FORBIDDEN,
        404: NO_SUCH_WORKLOAD,
    },
)
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
    response = Response(chunks, mimetype=ZIP_MEDIA_TYPE)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="workload-{workload["id"]}-{kind}.zip"'
    )
    return response
