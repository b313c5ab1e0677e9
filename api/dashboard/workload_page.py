"""A workload's page: progress, the newest results as thumbnails, the failed images, a drop
zone that uploads through POST /workloads/{id}/images, and the archive's link."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template

from api.access import visible_workload
from api.dashboard.blueprint import bp
from api.dashboard.described import html_page
from api.dashboard.session import page
from api.dashboard.thumbnails import thumbnail_file
from api.db import get_db
from api.errors import not_found
from api.images import send_stored
from api.inputs import ID_CONVERTER
from api.tokens import Principal
from api.workloads import describe_workload
from datastore import workloads
from protocol import JobStatus

WORKLOAD_PAGE = f"/ui/workloads/<{ID_CONVERTER}:workload_id>"


def _context(principal: Principal, workload_id: int) -> dict[str, Any]:
    """The workload as GET /workloads/{id} renders it, its newest results and its failures
    (404 for another user's, as in the JSON API)."""
    config = current_app.config["DPIP"]
    row = visible_workload(principal, workload_id)
    workload = describe_workload(row)
    newest = workload["filtered_images"][-config.dashboard_thumbnails :][::-1]
    failed = workloads.list_images(get_db(), row["id"], JobStatus.FAILED)
    return {
        "principal": principal,
        "workload": workload,
        "newest": newest,
        "failed": [
            {"image_id": r["number"], "filename": r["filename"], "error": r["error"]}
            for r in failed
        ],
        "poll_s": config.dashboard_poll_s,
        "thumb_px": config.thumbnail_side_px,
        "max_batch_images": config.max_batch_images,
    }


@bp.get(WORKLOAD_PAGE)
@html_page("A workload's page", description="Another user's workload: 404, as in the JSON API.")
@page
def workload_page(principal: Principal, workload_id: int):
    return render_template("workload.html", **_context(principal, workload_id))


@bp.get(f"{WORKLOAD_PAGE}/live")
@html_page("A workload page's live part (an HTML fragment, polled)")
@page
def workload_fragment(principal: Principal, workload_id: int):
    return render_template("_workload.html", **_context(principal, workload_id))


@bp.get(f"{WORKLOAD_PAGE}/images/<{ID_CONVERTER}:number>")
@html_page("An image's original and result side by side")
@page
def image_page(principal: Principal, workload_id: int, number: int):
    row = visible_workload(principal, workload_id)
    image = workloads.get_image(get_db(), row["id"], number)
    if image is None:
        raise not_found(f"image {number} does not exist in workload {row['id']}")
    return render_template(
        "image.html",
        principal=principal,
        workload=describe_workload(row, with_lists=False),
        number=number,
        filename=image["filename"],
    )


@bp.get(f"{WORKLOAD_PAGE}/thumbnails/<{ID_CONVERTER}:number>.jpg")
@html_page("A result's thumbnail (JPEG), made on the first request", media_type="image/jpeg")
@page
def thumbnail(principal: Principal, workload_id: int, number: int):
    row = visible_workload(principal, workload_id)
    image = workloads.get_image(get_db(), row["id"], number)
    if image is None or image["status"] != JobStatus.DONE:
        raise not_found(f"image {number} of workload {row['id']} has no result")
    response = send_stored(thumbnail_file(row, image), "image/jpeg", max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
