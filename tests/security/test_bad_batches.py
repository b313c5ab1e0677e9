"""POST /workloads/{id}/images with bad batches: refused in the JSON error shape, nothing stored.

Every refusal is all or nothing: the good images sent with a bad one are not stored either.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.batch_bodies import (
    FORM,
    TAR,
    ZIP,
    encrypted_zip,
    form_body,
    images_form,
    lying_zip_bomb,
    pax_member,
    special_member,
    tar_body,
    zip_body,
)
from tests.conftest import Client, image_bytes
from tests.outcomes import database
from tests.security.conftest import BATCH_LIMIT, UPLOAD_LIMIT, Actor
from tests.security.helpers import assert_error, assert_unchanged, snapshot
from tests.security.test_upload_memory import _api_rss as api_rss
from tests.security.test_upload_memory import peak_rss

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


MB = 1024 * 1024
MAX_BATCH_IMAGES = 1000  # the default, which this suite's system keeps
PNG = image_bytes("PNG", size=(4, 4))  # ~100 bytes: 1,001 of them make a small body
BAD = b"not an image at all"


def _batch(actor: Actor, body, content_type: str, client: Client | None = None):
    return (client or actor.client).post(
        f"/workloads/{actor.workload_id}/images",
        data=body,
        headers={"Content-Type": content_type},
    )


def _good_then_bad(count: int = 5, bad_at: int = 2) -> list[tuple[str, bytes]]:
    return [
        (f"frame{n}.png" if n != bad_at else "bad.png", PNG if n != bad_at else BAD)
        for n in range(count)
    ]


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    """The body as a chunked upload: no Content-Length for the API to check up front."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


Make = Callable[[Actor], requests.Response]
OVER_BATCH = bytes(BATCH_LIMIT // 8)  # deflates to almost nothing; 9 of them unpack past it

CASES: list = [
    # one bad image in the middle: 400 naming its index and filename
    *[
        pytest.param(
            lambda a, body=body, kind=kind: _batch(a, body, kind),
            400,
            "not_an_image",
            "image 2 ('bad.png')",
            id=f"bad-image-in-{name}",
        )
        for name, body, kind in [
            ("form", images_form(_good_then_bad()), FORM),
            ("zip", zip_body(_good_then_bad()), ZIP),
            ("tar", tar_body(_good_then_bad()), TAR),
        ]
    ],
    pytest.param(
        lambda a: _batch(a, images_form([("a.png", PNG), ("empty.png", b"")]), FORM),
        400,
        "not_an_image",
        "image 1 ('empty.png')",
        id="empty-image",
    ),
    # past the limits: 413
    *[
        pytest.param(
            lambda a, body=body, kind=kind: _batch(a, body, kind),
            413,
            "too_many_images",
            "at most 1000 images",
            id=f"1001-images-in-{name}",
        )
        for name, body, kind in [
            ("form", images_form([(f"{n}.png", PNG) for n in range(1001)]), FORM),
            ("zip", zip_body([(f"{n}.png", PNG) for n in range(1001)]), ZIP),
            ("tar", tar_body([(f"{n}.png", PNG) for n in range(1001)]), TAR),
        ]
    ],
    pytest.param(
        lambda a: _batch(a, tar_body([special_member("d", tarfile.DIRTYPE)] * 2001), TAR),
        413,
        "too_many_images",
        "2000 entries",
        id="tar-of-2001-directories",
    ),
    pytest.param(
        lambda a: _batch(a, zip_body([("a.png", PNG), ("pad", bytes(BATCH_LIMIT))]), ZIP),
        413,
        "payload_too_large",
        f"at most {BATCH_LIMIT} bytes",
        id="body-over-the-byte-limit",
    ),
    pytest.param(
        lambda a: _batch(a, _chunks(tar_body([("pad.png", bytes(BATCH_LIMIT))])), TAR),
        413,
        "payload_too_large",
        f"at most {BATCH_LIMIT} bytes",
        id="chunked-body-over-the-byte-limit",
    ),
    pytest.param(
        lambda a: _batch(
            a,
            zip_body(
                [(f"{n}.png", OVER_BATCH) for n in range(9)], compress_type=zipfile.ZIP_DEFLATED
            ),
            ZIP,
        ),
        413,
        "payload_too_large",
        "in its images",
        id="zip-unpacking-past-the-byte-limit",
    ),
    # zip bombs: a member inflating past one image's limit, declared or not
    pytest.param(
        lambda a: _batch(
            a,
            zip_body(
                [("a.png", PNG), ("bomb.png", bytes(UPLOAD_LIMIT + 1))],
                compress_type=zipfile.ZIP_DEFLATED,
            ),
            ZIP,
        ),
        400,
        "image_too_large",
        "image 1 ('bomb.png') inflates to",
        id="zip-member-over-the-image-limit",
    ),
    pytest.param(
        lambda a: _batch(a, lying_zip_bomb(256 * MB), ZIP),
        400,
        "invalid_batch",
        "image 0 ('bomb.png') cannot be read",
        id="zip-bomb-lying-about-its-size",
    ),
    pytest.param(
        lambda a: _batch(
            a, images_form([("a.png", PNG), ("big.png", bytes(UPLOAD_LIMIT + 1))]), FORM
        ),
        400,
        "image_too_large",
        "image 1 ('big.png') is over",
        id="form-part-over-the-image-limit",
    ),
    # tar tricks and special members
    *[
        pytest.param(
            lambda a, member=member: _batch(a, tar_body([("a.png", PNG), member]), TAR),
            400,
            "invalid_batch",
            f"image 1 ('{member.name}') is {kind}",
            id=f"tar-{kind.split()[-1]}",
        )
        for member, kind in [
            (special_member("x.png", tarfile.SYMTYPE, linkname="/etc/passwd"), "a symbolic link"),
            (special_member("y.png", tarfile.LNKTYPE, linkname="a.png"), "a hard link"),
            (
                special_member("z.png", tarfile.CHRTYPE, devmajor=1, devminor=3),
                "a character device",
            ),
            (special_member("w.png", tarfile.BLKTYPE), "a block device"),
            (special_member("f.png", tarfile.FIFOTYPE), "a FIFO"),
        ]
    ],
    pytest.param(
        lambda a: _batch(
            a,
            zip_body([("l.png", b"/etc/passwd")], external_attr=(0o120777 << 16)),
            ZIP,
        ),
        400,
        "invalid_batch",
        "image 0 ('l.png') is a link",
        id="zip-symlink",
    ),
    pytest.param(
        lambda a: _batch(a, encrypted_zip(), ZIP),
        400,
        "invalid_batch",
        "image 0 ('e.png') is encrypted",
        id="zip-encrypted",
    ),
    pytest.param(
        lambda a: _batch(a, tar_body([pax_member({"comment": "x" * (3 * MB)})]), TAR),
        400,
        "invalid_batch",
        "over the budget",
        id="tar-pax-header-of-3-MB",
    ),
    pytest.param(
        lambda a: _batch(a, tar_body([pax_member({"GNU.sparse.major": "1"})]), TAR),
        400,
        "invalid_batch",
        "sparse",
        id="tar-pax-sparse-map",
    ),
    pytest.param(
        lambda a: _batch(a, tar_body([("a.png", PNG)])[:1024] + b"\xff" * 512 + bytes(1024), TAR),
        400,
        "invalid_batch",
        "damaged header",
        id="tar-damaged-after-a-member",
    ),
    pytest.param(
        lambda a: _batch(
            a, zip_body([(f"{n:0>1000}.png", PNG) for n in range(3)], extra=bytes(60_000)), ZIP
        ),
        400,
        "invalid_batch",
        "central directory",
        id="zip-directory-larger-than-its-entries-need",
    ),
    # not what it claims to be
    pytest.param(lambda a: _batch(a, PNG, ZIP), 400, "invalid_batch", "not a zip", id="png-as-zip"),
    pytest.param(
        lambda a: _batch(a, zip_body([("a.png", PNG)]), TAR),
        400,
        "invalid_batch",
        "not a readable tar",
        id="zip-as-tar",
    ),
    pytest.param(
        lambda a: _batch(a, form_body([("data", "a.png", PNG)], end=False), FORM),
        400,
        "invalid_batch",
        "cannot be read",
        id="form-cut-short",
    ),
    pytest.param(
        lambda a: _batch(a, form_body([("workload_id", None, b"1"), ("data", "a", PNG)]), FORM),
        400,
        "invalid_batch",
        "'workload_id'",
        id="form-with-a-plain-field",
    ),
    pytest.param(
        lambda a: _batch(a, images_form([]), FORM),
        400,
        "missing_field",
        "no image",
        id="form-of-no-image",
    ),
    pytest.param(
        lambda a: _batch(a, zip_body([("dir/", b"")]), ZIP),
        400,
        "missing_field",
        "no image",
        id="zip-of-a-directory",
    ),
    pytest.param(
        lambda a: _batch(a, PNG, "image/png"),
        415,
        "unsupported_media_type",
        "application/zip",
        id="a-raw-image",
    ),
]


@pytest.mark.parametrize(("make", "status", "code", "says"), CASES)
def test_bad_batches_are_refused_and_store_nothing(
    cluster, alice: Actor, make: Make, status: int, code: str, says: str
):
    before = snapshot(cluster)
    body = assert_error(make(alice), status, code)
    assert says in body["message"], body["message"]
    assert_unchanged(cluster, before)


def test_a_lying_zip_bomb_is_never_inflated(cluster, alice: Actor):
    """1 GiB of zeros in ~1 MB of deflate, declared as 100 bytes: zipfile reads 100."""
    bomb = lying_zip_bomb(1024 * MB)
    before, rss_before = snapshot(cluster), api_rss(cluster)
    with peak_rss(cluster) as peak:
        response = _batch(alice, bomb, ZIP)
    assert_error(response, 400, "invalid_batch")
    assert peak[0] - rss_before < 50 * MB, f"the API grew by {(peak[0] - rss_before) // MB} MB"
    assert_unchanged(cluster, before)


def test_others_and_workers_get_nothing(cluster, alice: Actor, bob: Actor, worker_client):
    """Another user's workload is 404 and a worker token 403, before any body is read."""
    before = snapshot(cluster)
    images, archive = (
        f"/workloads/{bob.workload_id}/images",
        f"/workloads/{bob.workload_id}/archive",
    )
    body = zip_body([("a.png", PNG)])
    for client, status, code in [
        (alice.client, 404, "not_found"),
        (worker_client, 403, "forbidden"),
    ]:
        assert_error(client.post(images, data=body, headers={"Content-Type": ZIP}), status, code)
        assert_error(client.get(images), status, code)
        assert_error(client.get(archive), status, code)
    assert_unchanged(cluster, before)


def test_member_paths_are_names_never_paths(cluster, alice: Actor):
    """`../` and absolute names are kept as text; the files land in the workload's
    directory under their numbers, and nowhere else."""
    names = ["../../../../escape.png", "/etc/cron.d/x.png", "..\\..\\win.png"]
    before = snapshot(cluster)
    for body, kind in [
        (zip_body([(name, PNG) for name in names]), ZIP),
        (tar_body([(name, PNG) for name in names]), TAR),
        (images_form([(name, PNG) for name in names[:2]]), FORM),
    ]:
        response = _batch(alice, body, kind)
        assert response.status_code == 201, response.text
        kept = [image["filename"] for image in response.json()["images"]]
        assert kept == names[: len(kept)]
    new_files = {path for path, _ in snapshot(cluster).files - before.files}
    assert len(new_files) == 8, new_files
    conn = database(cluster)
    try:
        query = "SELECT dir_name FROM workloads WHERE id = ?"
        [directory] = conn.execute(query, (alice.workload_id,)).fetchone()
    finally:
        conn.close()
    assert {Path(path).parent for path in new_files} == {Path(directory)}
    assert all(Path(path).name.split(".")[1:] == ["original", "png"] for path in new_files)
