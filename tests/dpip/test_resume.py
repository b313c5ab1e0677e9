"""What a resumed upload skips: images the workload holds under the same kept name and size."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.inputs import client_filename
from client import ImageInfo
from dpip.image_files import LocalImage
from dpip.resume import kept_filename, plan_upload
from foundation.defaults import MAX_FILENAME_CHARS


def local(name: str, size: int = 100) -> LocalImage:
    return LocalImage(Path("/photos", name), name, size)


def stored(filename: str | None, size: int | None = 100) -> ImageInfo:
    return ImageInfo(0, filename, size, "PNG", 1, 1, "queued", None)


def test_images_held_by_name_and_size_are_skipped_and_the_rest_sent_in_order():
    images = [local("a.png"), local("day1/b.png"), local("c.png", 7), local("d.png")]
    plan = plan_upload(images, [stored("day1/b.png"), stored("c.png", 8), stored(None)])
    assert plan.already_uploaded == (images[1],)
    assert plan.to_send == (images[0], images[2], images[3])


def test_each_held_image_stands_for_one_local_image():
    twins = [local("x.png"), local("x.png")]  # the same relative name under two arguments
    plan = plan_upload(twins, [stored("x.png")])
    assert (len(plan.already_uploaded), len(plan.to_send)) == (1, 1)
    assert plan_upload(twins, [stored("x.png"), stored("x.png")]).to_send == ()


@pytest.mark.parametrize(
    "name",
    [
        "holiday/day1/img_001.jpg",
        "tab\there.png",
        "zero\u200dwidth.png",
        "été/photo.jpg",
        "lone\udcffsurrogate.png",
        "deep/" * 60 + "long.png",
    ],
)
def test_a_name_is_compared_in_the_form_the_api_keeps(name):
    assert kept_filename(name) == client_filename(name, MAX_FILENAME_CHARS)
    assert (
        plan_upload([local(name)], [stored(client_filename(name, MAX_FILENAME_CHARS))]).to_send
        == ()
    )
