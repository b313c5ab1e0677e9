"""Images: users upload originals, workers upload results, both download by number."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from flask.blueprints import BlueprintSetupState
from flask_jwt_extended import jwt_required

from api.access import require_assigned_job, require_result_of_own_job, visible_workload
from api.db import get_db
from api.errors import APIError, bad_request, forbidden, not_found
from api.inputs import ID_CONVERTER, client_filename, parse_id, request_fields
from api.openapi import (
    ANY_TOKEN,
    COUNT,
    ID,
    TEXT,
    Answer,
    binary,
    choice,
    describe,
    json_answer,
    object_of,
    query,
)
from api.originals import StagedOriginal, store_originals
from api.tokens import Principal, current_principal
from datastore import Row, jobs, metric_counts, transaction, workloads
from imagestore import ImageName, ImageStore, SizedStream, open_image_store
from imaging import ImageInfo, ImageRejected, ImageTooLarge, extension_of, inspect_image
from imaging.inspection import ALLOWED_FORMATS
from protocol import JobStatus

bp = Blueprint("images", __name__)

WORKLOAD_HINT = "; images are numbered per workload, so add ?workload_id=<id>"
STORE_EXTENSION = "dpip_images"

IMAGE_KINDS = ("original", "filtered")
IMAGE_KIND = choice(IMAGE_KINDS) | {"default": "original"}
IMAGE_CONTENT = {
    media_type: binary(media_type)
    for media_type in sorted({mime_type for _, mime_type in ALLOWED_FORMATS.values()})
}
ANY_IMAGE = binary("image/*")
UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "workload_id": ID,
        "data": ANY_IMAGE | {"description": "the image (or in `file`)"},
        "file": ANY_IMAGE,
        "type": IMAGE_KIND,
        "image_id": ID | {"description": "with `type=filtered` (workers): the original's number"},
        "filename": TEXT | {"description": "the image's name, kept as text"},
    },
}


@bp.record_once
def _install_store(state: BlueprintSetupState) -> None:
    config = state.app.config["DPIP"]
    state.app.extensions[STORE_EXTENSION] = open_image_store(config.image_store, config.images_dir)


def image_store() -> ImageStore:
    """The app's image store, made (and its directories closed to others) at start."""
    return current_app.extensions[STORE_EXTENSION]


def send_stored(stored: Path | SizedStream, mimetype: str, max_age: int) -> Response:
    """Answer with a stored image: a local file by sendfile, a store's stream as it reads,
    with its length either way."""
    response = send_file(stored, mimetype=mimetype, max_age=max_age)
    if not isinstance(stored, Path):
        response.content_length = stored.size
    return response


def _image_type(fields: dict) -> str:
    kind = fields.get("type") or "original"
    if kind not in IMAGE_KINDS:
        raise bad_request("'type' must be 'original' or 'filtered'", "invalid_field")
    return kind


def _is_raw_image_body() -> bool:
    """True when the body is the image itself (curl --data-binary), not a form."""
    mimetype = request.mimetype
    return mimetype.startswith("image/") or mimetype == "application/octet-stream"


def _uploaded_bytes(fields: dict) -> tuple[bytes, str | None]:
    """The image's bytes and the client's name for it: the whole body (named by the field
    `filename`, if sent), or the form's file field `data` (or `file`), named by its filename.

    A raw body skips multipart parsing, which costs more than the rest of a small upload.
    """
    max_chars = current_app.config["DPIP"].max_filename_chars
    if _is_raw_image_body():
        data = request.get_data(cache=False)
        if len(data) >= current_app.config["MAX_CONTENT_LENGTH"]:
            # A chunked body (no Content-Length) is cut at the limit, not refused; reading
            # on from the limit answers 413.
            request.stream.read(1)
        return data, client_filename(fields.get("filename"), max_chars)
    upload = request.files.get("data") or request.files.get("file")
    if upload is None:
        raise bad_request(
            "send the image as multipart file field 'data', or as the body with an image/*"
            " or application/octet-stream Content-Type",
            "missing_field",
        )
    return upload.read(), client_filename(upload.filename or fields.get("filename"), max_chars)


def _inspect_upload(data: bytes) -> ImageInfo:
    config = current_app.config["DPIP"]
    try:
        return inspect_image(data, config.max_image_pixels, config.image_cost_limits)
    except ImageRejected as e:
        raise APIError(413 if isinstance(e, ImageTooLarge) else 400, e.code, str(e)) from e


def _store_original(workload: Row, data: bytes, info: ImageInfo, filename: str | None) -> int:
    with image_store().put(workload["dir_name"], io.BytesIO(data)) as staged:
        return store_originals(workload, [StagedOriginal(staged, info, len(data), filename)])[0]


def _store_filtered(principal: Principal, workload: Row, number: int, data: bytes) -> None:
    if not principal.is_worker:
        raise forbidden("only the worker running the job may upload a filtered result")
    image = workloads.get_image(get_db(), workload["id"], number)
    if image is None:
        raise not_found(f"image {number} does not exist in workload {workload['id']}")
    extension = extension_of(image["format"])
    staged = image_store().put(workload["dir_name"], io.BytesIO(data))
    with staged, transaction(get_db()) as db:
        if not jobs.complete_job(db, workload["id"], number, principal.id):
            raise APIError(409, "job_not_assigned", "this job is no longer assigned to you")
        metric_counts.count(db, metric_counts.JOBS_TOTAL, 1, "done")
        staged.commit(ImageName(number, "filtered", extension))


@bp.post("/images")
@describe(
    "Upload an original image",
    "images",
    description="As a multipart form (the file in `data` or `file`, and `workload_id`), or as"
    " the body itself with an image/* or application/octet-stream Content-Type (cheaper for"
    " the API), with `workload_id` in the query string. JPEG, PNG, WEBP, BMP, TIFF and GIF,"
    " recognised by their content. The image gets the workload's next number. Workers upload"
    " results here with `type=filtered` and `image_id`.",
    security=ANY_TOKEN,
    parameters=(
        query("workload_id", ID, "the workload (or a form field)"),
        query("type", IMAGE_KIND, "`filtered`: a worker's result"),
        query("image_id", ID, "with `type=filtered`: the original's number"),
        query("filename", TEXT, "for a raw body: the image's name, kept as text"),
    ),
    body={
        "multipart/form-data": UPLOAD_FORM,
        "image/*": ANY_IMAGE,
        "application/octet-stream": binary("application/octet-stream"),
    },
    body_required=True,
    answers={
        201: json_answer(
            "The image is stored and its job queued",
            object_of({"workload_id": COUNT, "image_id": COUNT, "type": choice(IMAGE_KINDS)}),
        )
    },
    errors={
        400: "`missing_field` (no `workload_id`, or no image), `invalid_field`, `not_an_image`,"
        " `image_too_complex`, `invalid_json`.",
        403: "`forbidden`: a user uploading a result, or a worker an original.",
        404: "`not_found`: no such workload, or not yours.",
        409: "`job_not_assigned`: a worker's result for a job it no longer holds.",
        413: "`payload_too_large`: over the upload limit (`DPIP_MAX_UPLOAD_BYTES`);"
        " `image_too_large`: over the pixel limit.",
        507: "`insufficient_storage`: the image store's disk is full.",
    },
)
@jwt_required()
def upload_image():
    principal = current_principal()
    fields = request_fields(include_query=True)
    kind = _image_type(fields)
    require_result_of_own_job(principal, fields, kind)
    workload = visible_workload(principal, parse_id(fields, "workload_id"))
    data, filename = _uploaded_bytes(fields)
    info = _inspect_upload(data)
    if kind == "original":
        number = _store_original(workload, data, info, filename)
    else:
        number = parse_id(fields, "image_id", " (the number of the original)")
        _store_filtered(principal, workload, number, data)
    return jsonify(workload_id=workload["id"], image_id=number, type=kind), 201


@bp.get(f"/images/<{ID_CONVERTER}:image_id>")
@describe(
    "Download an image",
    "images",
    description="The original (by default) or its filtered result, in the original's format."
    " `workload_id` and `type` may also come as form or JSON fields of the body. A worker"
    " token gets only the originals of its jobs, and one 404 for anything else.",
    security=ANY_TOKEN,
    parameters=(
        query("workload_id", ID, "the image's workload", required=True),
        query("type", IMAGE_KIND, "`original` or `filtered`"),
    ),
    answers={
        200: Answer("The image", IMAGE_CONTENT),
        206: Answer(
            "Part of the image, for a `Range` request",
            IMAGE_CONTENT,
            {"Content-Range": {"schema": TEXT, "description": "the part's bytes"}},
        ),
        304: Answer("Not modified since the `ETag` or date of `If-None-Match`/`-Modified-Since`"),
    },
    errors={
        400: "`missing_field` (`workload_id`), `invalid_field`, `invalid_json`.",
        404: "`not_found`: no such workload or image, not yours, or no filtered result (yet,"
        " or the image failed: the message says which).",
        416: "`requested_range_not_satisfiable`: a `Range` past the image's end.",
    },
)
@jwt_required()
def download_image(image_id: int):
    principal = current_principal()
    fields = request_fields(include_query=True)
    kind = _image_type(fields)
    workload_id = parse_id(fields, "workload_id", WORKLOAD_HINT)
    require_assigned_job(principal, workload_id, image_id, kind)
    workload = visible_workload(principal, workload_id)
    image = workloads.get_image(get_db(), workload["id"], image_id)
    if image is None:
        raise not_found(f"image {image_id} does not exist in workload {workload['id']}")
    if kind == "filtered" and image["status"] != JobStatus.DONE:
        detail = (
            f"failed: {image['error']}" if image["status"] == JobStatus.FAILED else "not ready yet"
        )
        raise not_found(f"image {image_id} has no filtered result ({detail})")
    info = ImageInfo(image["format"], image["width"], image["height"])
    stored = image_store().open(workload["dir_name"], ImageName(image_id, kind, info.extension))
    return send_stored(stored, info.mime_type, max_age=0)
