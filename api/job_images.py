"""Workers' batch requests: several jobs' originals in one answer, their results in one request.

Images travel as length-prefixed frames (`protocol.image_frames`). Only a worker token may
call these, and it reaches only the images of jobs running on that worker now: any other
image answers `not_assigned`, decided from the worker's own jobs before anything else is
looked up, so the answer tells nothing of which workloads or images exist. A batch's
results are checked like uploads, then completed in one transaction, each only if its job
still runs on that worker.

With an image store that signs URLs (S3), no image passes through here on its way to a
worker: the originals' answer is JSON, per image a URL that reads the original and one that
uploads the result to a staging name derived from the job and the worker (never the
worker's choice); the results' request then names the images uploaded, and each is read
back, checked and committed as a sent one would be.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from flask import Blueprint, Response, current_app, jsonify, request
from flask_jwt_extended import jwt_required

from api.db import get_db
from api.errors import APIError, bad_request, forbidden
from api.images import image_store
from api.inputs import RequestFields, json_body, parse_id
from api.openapi import (
    ID,
    TEXT,
    WORKER_TOKEN,
    Answer,
    binary,
    describe,
    fields_of,
    json_answer,
    object_of,
)
from api.tokens import Principal, current_principal
from datastore import jobs, metric_counts, transaction
from datastore.jobs import HeldImage
from imagestore import (
    DirectTransfers,
    ImageMissing,
    ImageName,
    ImageStore,
    StagedImage,
    Staging,
    UploadTooLarge,
)
from imaging import ImageRejected, extension_of, inspect_image
from protocol.image_frames import CONTENT_TYPE, FrameError, frame_head, read_frames

bp = Blueprint("job_images", __name__)

STREAM_CHUNK_BYTES = 1024 * 1024
NOT_ASSIGNED = "the image is not part of a job assigned to you"

ImageKey = tuple[int, int]  # (workload id, image number)

IMAGE_KEY = {"workload_id": ID, "image_id": ID}
FRAMES_TEXT = (
    f"Length-prefixed frames ({CONTENT_TYPE}), each a JSON head and an image's bytes; see"
    " protocol/image_frames.py."
)
TRANSFERS = object_of(
    {
        "images": {
            "type": "array",
            "items": object_of(
                IMAGE_KEY | {"status": TEXT, "original_url": TEXT, "result_url": TEXT},
                optional=("original_url", "result_url"),
            ),
        }
    }
)
UPLOADED_RESULTS = fields_of(
    {
        "results": {
            "type": "array",
            "minItems": 1,
            "items": fields_of(IMAGE_KEY, required=tuple(IMAGE_KEY)),
        }
    },
    required=("results",),
)
WORKER_ERRORS = {
    403: "`forbidden`: a user token.",
    413: "`too_many_images`: more images than a batch upload may hold.",
}


def _require_worker() -> Principal:
    principal = current_principal()
    if not principal.is_worker:
        raise forbidden("only workers fetch originals and deliver results in batches")
    return principal


def _key(fields: dict) -> ImageKey:
    """An image's (workload id, number) from a JSON object, each an id as anywhere else."""
    entry = RequestFields({}, fields)
    return parse_id(entry, "workload_id"), parse_id(entry, "image_id")


def _check_count(count: int) -> None:
    """A worker's batch is a few jobs; past the batch upload's image limit it is an attack."""
    limit = current_app.config["DPIP"].max_batch_images
    if count > limit:
        raise APIError(413, "too_many_images", f"at most {limit} images a request")


def _requested_images() -> list[ImageKey]:
    body = json_body()
    images = body.get("images") if isinstance(body, dict) else None
    if not isinstance(images, list) or not images:
        raise bad_request(
            'send {"images": [{"workload_id": …, "image_id": …}, …]} as JSON', "invalid_field"
        )
    _check_count(len(images))
    if not all(isinstance(entry, dict) for entry in images):
        raise bad_request("each image is an object with workload_id and image_id", "invalid_field")
    keys = [_key(entry) for entry in images]
    if len(set(keys)) < len(keys):
        raise bad_request("an image is named twice", "invalid_field")
    return keys


def _open(image: HeldImage) -> tuple[BinaryIO, int] | None:
    """The original's file, open, and its size; None when the store has lost it."""
    name = ImageName(image.number, "original", extension_of(image.format))
    try:
        stored = image_store().open(image.dir_name, name)
    except ImageMissing:
        return None
    file = stored.open("rb") if isinstance(stored, Path) else stored
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    return file, size


def _upload_name(image: HeldImage, worker_id: int) -> str:
    """Where this worker uploads this job's result: its own name, so no other worker's
    upload can take its place."""
    return f"result-{image.number}-{worker_id}.{extension_of(image.format)}"


def _transfer(
    store: DirectTransfers, key: ImageKey, image: HeldImage | None, principal: Principal
) -> dict:
    """The URLs that move one job's bytes: the original's read, the result's upload."""
    workload_id, number = key
    if image is None:
        return {"workload_id": workload_id, "image_id": number, "status": "not_assigned"}
    expires_s = current_app.config["DPIP"].transfer_url_ttl_s
    original = ImageName(number, "original", extension_of(image.format))
    return {
        "workload_id": workload_id,
        "image_id": number,
        "status": "ok",
        "original_url": store.read_url(image.dir_name, original, expires_s),
        "result_url": store.upload_url(
            image.dir_name, _upload_name(image, principal.id), expires_s
        ),
    }


def _stream(pieces: list[bytes | BinaryIO]) -> Iterator[bytes]:
    """Frame heads as they are, files in chunks (no image is held whole in memory here)."""
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
        else:
            while chunk := piece.read(STREAM_CHUNK_BYTES):
                yield chunk


@bp.post("/jobs/originals")
@describe(
    "Fetch the originals of your running jobs (workers only)",
    "workers",
    description=f"{FRAMES_TEXT} Each frame's head says `ok`, or `not_assigned` or `missing`"
    " with no bytes. With an S3 image store the answer is JSON instead: per image its status"
    " and, for `ok`, a presigned URL that reads the original and one that uploads the result.",
    security=WORKER_TOKEN,
    body={
        "application/json": fields_of(
            {
                "images": {
                    "type": "array",
                    "minItems": 1,
                    "items": fields_of(IMAGE_KEY, required=tuple(IMAGE_KEY)),
                }
            },
            required=("images",),
        )
    },
    body_required=True,
    answers={
        200: Answer(
            "One frame per image asked for (JSON with an S3 image store)",
            {CONTENT_TYPE: binary(CONTENT_TYPE), "application/json": TRANSFERS},
        )
    },
    errors={400: "`invalid_field`: the body is not a list of distinct images."} | WORKER_ERRORS,
)
@jwt_required()
def download_originals() -> Response:
    """The originals of the named images, each in a frame saying `ok` or why not."""
    principal = _require_worker()
    keys = _requested_images()
    held = jobs.images_held_by(get_db(), principal.id)
    store = image_store()
    if isinstance(store, DirectTransfers):
        return jsonify(images=[_transfer(store, key, held.get(key), principal) for key in keys])
    files: list[BinaryIO] = []
    pieces: list[bytes | BinaryIO] = []
    length = 0
    for workload_id, number in keys:
        header = {"workload_id": workload_id, "image_id": number}
        image = held.get((workload_id, number))
        opened = _open(image) if image is not None else None
        if opened is None:
            status = "not_assigned" if image is None else "missing"
            head = frame_head({**header, "status": status}, 0)
            pieces.append(head)
            length += len(head)
            continue
        file, size = opened
        files.append(file)
        head = frame_head({**header, "status": "ok"}, size)
        pieces += [head, file]
        length += len(head) + size

    def close_files() -> None:
        for file in files:
            file.close()

    response = Response(_stream(pieces), mimetype=CONTENT_TYPE)
    response.content_length = length
    response.call_on_close(close_files)
    return response


@bp.post("/jobs/results")
@describe(
    "Deliver the results of your running jobs (workers only)",
    "workers",
    description=f"{FRAMES_TEXT} Each result is checked like an upload; all are stored in one"
    " transaction, each only if its job still runs on this worker. With an S3 image store the"
    " body may instead be JSON naming the results uploaded to their presigned URLs, which"
    " are read back from there and checked the same way.",
    security=WORKER_TOKEN,
    body={CONTENT_TYPE: binary(CONTENT_TYPE), "application/json": UPLOADED_RESULTS},
    body_required=True,
    answers={
        200: json_answer(
            "Per image: `stored`, `not_assigned`, or why the check refused it",
            object_of(
                {
                    "results": {
                        "type": "array",
                        "items": object_of(IMAGE_KEY | {"status": TEXT, "message": TEXT}),
                    }
                }
            ),
        )
    },
    errors={400: "`invalid_field`, `invalid_frames`."} | WORKER_ERRORS,
)
@jwt_required()
def upload_results():
    """Store each result of a job that runs on this worker, all in one transaction; answer
    per image `stored`, `not_assigned`, or why the check refused it."""
    principal = _require_worker()
    store = image_store()
    held = jobs.images_held_by(get_db(), principal.id)
    with store.staging() as staging:  # whatever the outcome, nothing stays staged
        if request.mimetype == CONTENT_TYPE:
            checked = _sent_results(store, held, staging)
        elif isinstance(store, DirectTransfers) and request.mimetype == "application/json":
            checked = _uploaded_results(store, held, principal, staging)
        else:
            raise bad_request(f"send the results as {CONTENT_TYPE} frames", "invalid_field")
        answers = _complete(checked, principal)
    return jsonify(
        results=[
            {"workload_id": w, "image_id": n, "status": status, "message": message}
            for (w, n), (status, message) in answers.items()
        ]
    )


@dataclass
class CheckedResults:
    """Per image the answer so far, and the results that passed the check, staged."""

    answers: dict[ImageKey, tuple[str, str]] = field(default_factory=dict)
    staged: list[tuple[HeldImage, StagedImage]] = field(default_factory=list)

    def held_image(self, key: ImageKey, held: dict[ImageKey, HeldImage]) -> HeldImage | None:
        """Count one more image named (refusing a name twice or too many images); its job's
        image if the job runs on this worker, else None, answered `not_assigned`."""
        _check_count(len(self.answers) + 1)
        if key in self.answers:
            raise bad_request("an image is named twice", "invalid_field")
        image = held.get(key)
        if image is None:
            self.answers[key] = ("not_assigned", NOT_ASSIGNED)
        return image

    def passes(self, image: HeldImage, data: bytes) -> bool:
        """Whether the result passes an upload's check; if not, answer why."""
        config = current_app.config["DPIP"]
        try:
            inspect_image(data, config.max_image_pixels, config.image_cost_limits)
        except ImageRejected as e:
            self.refuse(image, e.code, str(e))
            return False
        return True

    def refuse(self, image: HeldImage, code: str, message: str) -> None:
        self.answers[(image.workload_id, image.number)] = (code, message)

    def stage(self, image: HeldImage, staged: StagedImage) -> None:
        self.staged.append((image, staged))
        self.answers[(image.workload_id, image.number)] = ("stored", "")


def _sent_results(
    store: ImageStore, held: dict[ImageKey, HeldImage], staging: Staging
) -> CheckedResults:
    """The results in the request's frames, checked, and staged in the store."""
    checked = CheckedResults()
    limit = current_app.config["DPIP"].max_upload_bytes
    try:
        for header, data in read_frames(request.stream.read, limit):
            image = checked.held_image(_key(header), held)
            if image is not None and checked.passes(image, data):
                put = store.put(image.dir_name, io.BytesIO(data))
                checked.stage(image, staging.add(put))
    except FrameError as e:
        raise bad_request(str(e), "invalid_frames") from e
    return checked


def _uploaded_results(
    store: DirectTransfers,
    held: dict[ImageKey, HeldImage],
    principal: Principal,
    staging: Staging,
) -> CheckedResults:
    """The results the request names, read back from where this worker uploaded them, and
    checked; each stays staged there."""
    checked = CheckedResults()
    body = json_body()
    named = body.get("results") if isinstance(body, dict) else None
    if not isinstance(named, list) or not named:
        raise bad_request(
            'send {"results": [{"workload_id": …, "image_id": …}, …]} as JSON', "invalid_field"
        )
    if not all(isinstance(entry, dict) for entry in named):
        raise bad_request("each result is an object with workload_id and image_id", "invalid_field")
    limit = current_app.config["DPIP"].max_upload_bytes
    for entry in named:
        image = checked.held_image(_key(entry), held)
        if image is None:
            continue
        try:
            data, staged = store.take_upload(
                image.dir_name, _upload_name(image, principal.id), limit
            )
        except ImageMissing:
            checked.refuse(image, "missing", "no result was uploaded for this image")
            continue
        except UploadTooLarge as e:
            checked.refuse(image, "image_too_large", str(e))
            continue
        staging.add(staged)  # one refused is removed with the rest
        if checked.passes(image, data):
            checked.stage(image, staged)
    return checked


def _complete(checked: CheckedResults, principal: Principal) -> dict[ImageKey, tuple[str, str]]:
    """Complete the staged results' jobs in one transaction, each only if it still runs on
    this worker, committing its result with it; return the answers."""
    answers = checked.answers
    with transaction(get_db()) as db:
        done = 0
        for image, staged_image in checked.staged:
            if jobs.complete_job(db, image.workload_id, image.number, principal.id):
                extension = extension_of(image.format)
                staged_image.commit(ImageName(image.number, "filtered", extension))
                done += 1
            else:  # taken from it since the request began
                answers[(image.workload_id, image.number)] = ("not_assigned", NOT_ASSIGNED)
        metric_counts.count(db, metric_counts.JOBS_TOTAL, done, "done")
    return answers
