"""A batch's body, read by the stdlib's and Werkzeug's own parsers (api/batch_input.py and
api/batch_archives.py): order, names, refusals."""

from __future__ import annotations

import stat
import tarfile
import tempfile
import zipfile

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from api.batch_input import batch_members
from api.batch_members import BatchLimits
from api.errors import APIError
from api.inputs import client_filename
from tests.batch_bodies import (
    FORM,
    TAR,
    ZIP,
    encrypted_zip,
    form_body,
    lying_zip_bomb,
    pax_member,
    special_member,
    tar_body,
    zip_body,
)

LIMITS = BatchLimits(max_images=3, max_bytes=64 * 1024, max_image_bytes=1024, max_filename_chars=40)


def _read(body: bytes, content_type: str, limits: BatchLimits = LIMITS) -> list[tuple]:
    """(filename, bytes) of each member, in order, as the API would read them."""
    app = Flask(__name__)
    with (
        app.test_request_context("/", method="POST", data=body, content_type=content_type),
        tempfile.TemporaryFile() as spool,
        batch_members(spool, limits) as members,
    ):
        assert [member.index for member in members] == list(range(len(members)))
        return [(member.filename, member.read()) for member in members]


def _refusal(body: bytes, content_type: str, limits: BatchLimits = LIMITS) -> APIError:
    with pytest.raises(APIError) as refused:
        _read(body, content_type, limits)
    return refused.value


def test_a_form_keeps_the_order_and_the_filenames():
    body = form_body([("data", "b.png", b"second"), ("data", "a.png", b"x" * 1024)])
    assert _read(body, FORM) == [("b.png", b"second"), ("a.png", b"x" * 1024)]


def test_a_zip_skips_directories_and_keeps_member_paths_as_names():
    body = zip_body([("frames/", b""), ("frames/2.png", b"two"), ("../1.png", b"one")])
    assert _read(body, ZIP) == [("frames/2.png", b"two"), ("../1.png", b"one")]


def test_a_tar_reads_long_names_and_skips_directories():
    long_name = "d/" * 60 + "x.png"  # a pax path record; kept to its last 40 characters
    directory = special_member("d", tarfile.DIRTYPE)
    for tar_format in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        body = tar_body([directory, (long_name, b"one"), ("y.png", b"two")], tar_format)
        assert _read(body, TAR) == [(long_name[-40:], b"one"), ("y.png", b"two")]


@pytest.mark.parametrize(
    "body",
    [
        form_body([("data", f"{n}.png", b"x") for n in range(4)]),
        zip_body([(f"{n}.png", b"x") for n in range(4)]),
        tar_body([(f"{n}.png", b"x") for n in range(4)]),
        # entries, directories included: 2 per image allowed
        tar_body([special_member(f"d{n}", tarfile.DIRTYPE) for n in range(7)]),
        zip_body([(f"d{n}/", b"") for n in range(7)]),
    ],
    ids=["form", "zip", "tar", "tar-directories", "zip-directories"],
)
def test_a_batch_past_the_count_is_413(body):
    content_type = FORM if body.startswith(b"--") else ZIP if body.startswith(b"PK") else TAR
    refusal = _refusal(body, content_type)
    assert (refusal.status, refusal.code) == (413, "too_many_images")


def test_a_body_past_the_byte_limit_is_413():
    body = form_body([("data", "a.png", b"x" * 1000)])
    limits = BatchLimits(3, max_bytes=len(body) - 1, max_image_bytes=1024, max_filename_chars=9)
    refusal = _refusal(body, FORM, limits)
    assert (refusal.status, refusal.code) == (413, "payload_too_large")


BIG = b"x" * 1025
LINK_MODE = (stat.S_IFLNK | 0o777) << 16
BAD_MEMBERS = {
    "form-big": (form_body([("data", "a", b"1"), ("data", "big.png", BIG)]), FORM),
    "zip-big": (zip_body([("a", b"1"), ("big.png", BIG)]), ZIP),
    "tar-big": (tar_body([("a", b"1"), ("big.png", BIG)]), TAR),
    "symlink": (
        tar_body([("a", b"1"), special_member("l.png", tarfile.SYMTYPE, linkname="/etc")]),
        TAR,
    ),
    "hardlink": (tar_body([special_member("h.png", tarfile.LNKTYPE, linkname="a")]), TAR),
    "device": (tar_body([special_member("dev.png", tarfile.CHRTYPE)]), TAR),
    "fifo": (tar_body([special_member("fifo.png", tarfile.FIFOTYPE)]), TAR),
    "zip-symlink": (zip_body([("l.png", b"/etc/passwd")], external_attr=LINK_MODE), ZIP),
    "encrypted": (encrypted_zip(), ZIP),
    "bzip2": (zip_body([("b.png", b"x")], compress_type=zipfile.ZIP_BZIP2), ZIP),
}
REFUSALS = {
    "form-big": ("image_too_large", "image 1 ('big.png') is over 1024 bytes"),
    "zip-big": ("image_too_large", "image 1 ('big.png') inflates to 1025 bytes"),
    "tar-big": ("image_too_large", "image 1 ('big.png') is 1025 bytes"),
    "symlink": ("invalid_batch", "image 1 ('l.png') is a symbolic link"),
    "hardlink": ("invalid_batch", "image 0 ('h.png') is a hard link"),
    "device": ("invalid_batch", "image 0 ('dev.png') is a character device"),
    "fifo": ("invalid_batch", "image 0 ('fifo.png') is a FIFO"),
    "zip-symlink": ("invalid_batch", "image 0 ('l.png') is a link"),
    "encrypted": ("invalid_batch", "image 0 ('e.png') is encrypted"),
    "bzip2": ("invalid_batch", "image 0 ('b.png') uses compression method 12"),
}


@pytest.mark.parametrize("case", list(BAD_MEMBERS))
def test_a_bad_member_is_refused_by_its_index_and_name(case):
    refusal = _refusal(*BAD_MEMBERS[case])
    code, named = REFUSALS[case]
    assert (refusal.status, refusal.code) == (400, code)
    assert refusal.message.startswith(named), refusal.message


def test_a_zip_member_is_read_no_further_than_its_declared_size():
    refusal = _refusal(lying_zip_bomb(10 << 20), ZIP)
    assert (refusal.status, refusal.code) == (400, "invalid_batch")
    assert refusal.message.startswith("image 0 ('bomb.png') cannot be read"), refusal.message


NOT_WHAT_IT_SAYS = {
    "not-zip": (b"not a zip", ZIP, "not a zip"),
    "not-tar": (b"not a tar" * 100, TAR, "not a readable tar"),
    "form-cut": (form_body([("data", "a", b"1")], end=False), FORM, "cannot be read"),
    "form-field": (form_body([("workload_id", None, b"1")]), FORM, "form field 'workload_id'"),
    "form-other-file": (form_body([("file", "a.png", b"1")]), FORM, "form field 'file'"),
    "pax-budget": (tar_body([pax_member({"comment": "x" * 7000})]), TAR, "over the budget"),
    "pax-sparse": (tar_body([pax_member({"GNU.sparse.major": "1"})]), TAR, "sparse"),
    "gnu-sparse": (
        tar_body([special_member("s.png", tarfile.GNUTYPE_SPARSE)], tarfile.GNU_FORMAT),
        TAR,
        "sparse",
    ),
    "tar-damaged": (
        tar_body([("a", b"1")])[:1024] + b"garbage!" * 64 + bytes(1024),
        TAR,
        "damaged header at byte 1024",
    ),
}


@pytest.mark.parametrize("case", list(NOT_WHAT_IT_SAYS))
def test_a_body_that_is_not_what_it_says_is_400(case):
    body, content_type, says = NOT_WHAT_IT_SAYS[case]
    refusal = _refusal(body, content_type)
    assert (refusal.status, refusal.code) == (400, "invalid_batch")
    assert says in refusal.message, refusal.message


def test_a_zip_directory_larger_than_its_entries_need_is_refused_before_it_is_loaded():
    names = [f"{n:0>900}.png" for n in range(3)]  # ~4 KB each: over 1 KiB per allowed entry
    body = zip_body([(name, b"x") for name in names], extra=bytes(3000))
    refusal = _refusal(body, ZIP)
    assert (refusal.status, refusal.code) == (400, "invalid_batch")
    assert "central directory" in refusal.message


def test_other_body_types_are_415():
    refusal = _refusal(b"{}", "application/json")
    assert (refusal.status, refusal.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (None, None),
        ("", None),
        (7, None),
        ("photo.jpg", "photo.jpg"),
        ("../../x.png", "./../x.png"),  # a name, never a path: only its length counts
        ("a\x00b\nc\u202e.png", "a\ufffdb\ufffdc\ufffd.png"),
        ("lone\udc80.png", "lone\ufffd.png"),
        ("x" * 300 + ".png", "x" * 6 + ".png"),
    ],
)
def test_client_filenames_are_kept_as_bounded_text(sent, kept):
    assert client_filename(sent, 10) == kept


FUZZ_SEEDS = [
    (zip_body([("a/", b""), ("a/1.png", b"one"), ("2.png", b"two")]), ZIP),
    (zip_body([("1.png", b"one" * 50)], compress_type=zipfile.ZIP_DEFLATED), ZIP),
    (tar_body([("x" * 120 + ".png", b"one"), pax_member({"comment": "c"})]), TAR),
    (tar_body([("y" * 120 + ".png", b"one")], tarfile.GNU_FORMAT), TAR),
    (form_body([("data", "1.png", b"one"), ("data", "2.png", b"two")]), FORM),
]
EDITS = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.sampled_from(["set", "cut", "insert"]),
        st.binary(min_size=1, max_size=40),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(case=st.integers(0, len(FUZZ_SEEDS) - 1), edits=EDITS)
def test_a_damaged_body_is_read_or_refused_never_an_unexpected_error(case, edits):
    """Zips, tars and forms with bytes changed, cut or added (found: a zip entry with an
    empty name, one whose header lies outside the zip, one of a later zip version)."""
    body, content_type = FUZZ_SEEDS[case]
    body = bytearray(body)
    for where, edit, data in edits:
        at = int(where * (len(body) - 1))
        if edit == "set":
            body[at : at + len(data)] = data
        elif edit == "cut":
            del body[at : at + len(data)]
        else:
            body[at:at] = data
    try:
        _read(bytes(body), content_type)
    except APIError as e:
        assert e.status in (400, 413), e.message
