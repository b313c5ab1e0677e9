"""Workload names and parameters, request bodies and user fields: bad ones change nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import image_bytes
from tests.security.helpers import NO_WORKER, assert_error, assert_unchanged, database, snapshot

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


NAME_CASES = [
    ("dot-dot-slash", "../escape"),
    ("dot-dot-alone", ".."),
    ("dot-dot-inside", "a..b"),
    ("slash", "a/b"),
    ("slash-alone", "/"),
    ("absolute", "/etc/passwd"),
    ("backslash", "a\\b"),
    ("nul", "nul\x00byte"),
    ("newline", "line\nbreak"),
    ("tab", "tab\tname"),
    ("escape-sequence", "\x1b[31mred"),
    ("rtl-override", "gpj.\u202eexe"),
    ("lone-surrogate", "\ud800"),
    ("10000-chars", "x" * 10_000),
    ("201-chars", "x" * 201),
    ("empty", ""),
    ("blank", "   "),
    ("number", 123),
    ("list", ["a"]),
    ("object", {"a": 1}),
    ("bool", True),
]

FILTER_CASES = [
    ("unknown", "sepia"),
    ("empty", ""),
    ("upper-case", "GRAYSCALE"),
    ("nul-suffix", "blur\x00"),
    ("dunder", "__class__"),
    ("list", ["blur"]),
    ("null", None),
    ("number", 1),
]

RADIUS_CASES = [
    ("negative", -1),
    ("tiny-negative", -0.0001),
    ("over-max", 100.0001),
    ("1e9", 1e9),
    ("400-digit-integer", 10**400),
    ("text", "not a number"),
    ("string-1e400", "1e400"),
    ("string-nan", "NaN"),
    ("string-inf", "inf"),
    ("string-negative-inf", "-Infinity"),
    ("list", [1]),
    ("object", {"value": 1}),
    ("bool", True),
]

TAG_CASES = [
    ("string-with-spaces", "not a list!"),
    ("numbers", [1, 2]),
    ("empty-tag", [""]),
    ("65-char-tag", ["x" * 65]),
    ("17-tags", [f"t{i}" for i in range(17)]),
    ("object", {"a": 1}),
    ("nested-list", [["nested"]]),
    ("space-inside", ["a b"]),
    ("path", ["../x"]),
    ("nul", ["tag\x00"]),
    ("null-element", [None]),
    ("number", 5),
    ("bool", True),
]

BODY_CASES = [
    pytest.param('{"workload_name": ', "invalid_json", id="malformed"),
    pytest.param("[1, 2]", "invalid_json", id="array"),
    pytest.param('"a string"', "invalid_json", id="string"),
    pytest.param("null", "invalid_json", id="null"),
    pytest.param(
        '{"radius": ' + "9" * 5000 + ', "filter": "blur"}', "invalid_json", id="5000-digit"
    ),
    pytest.param('{"radius": NaN, "filter": "blur"}', "invalid_parameter", id="nan-literal"),
    pytest.param('{"radius": Infinity, "filter": "blur"}', "invalid_parameter", id="inf-literal"),
    pytest.param(b"\xff\xfe\x00garbage", "invalid_json", id="not-utf8"),
    pytest.param(
        "[" * 100_000 + "]" * 100_000,
        "invalid_json",
        id="nested-100000-deep",  # regression test: this once raised RecursionError (500)
    ),
]

FORM_CASES = [
    pytest.param({"workload_name": "../x"}, "invalid_workload_name", id="name"),
    pytest.param({"workload_name": "a\x00b"}, "invalid_workload_name", id="name-nul"),
    pytest.param({"filter": "nope"}, "unknown_filter", id="filter"),
    pytest.param({"filter": "blur", "radius": "-1"}, "invalid_parameter", id="radius"),
    pytest.param({"filter": "blur", "radius": "1e309"}, "invalid_parameter", id="radius-overflow"),
    pytest.param({"tags": "a b,c"}, "invalid_tags", id="tags"),
    pytest.param({"tags": ",".join(f"t{i}" for i in range(17))}, "invalid_tags", id="17-tags"),
]


def _json_cases():
    for label, value in NAME_CASES:
        yield pytest.param({"workload_name": value}, "invalid_workload_name", id=f"name-{label}")
    for label, value in FILTER_CASES:
        yield pytest.param({"filter": value}, "unknown_filter", id=f"filter-{label}")
    for label, value in RADIUS_CASES:
        yield pytest.param(
            {"filter": "blur", "radius": value}, "invalid_parameter", id=f"radius-{label}"
        )
    for label, value in TAG_CASES:
        yield pytest.param({"tags": value}, "invalid_tags", id=f"tags-{label}")


@pytest.mark.parametrize(("body", "code"), list(_json_cases()))
def test_bad_workload_json_is_refused_and_changes_nothing(cluster, alice, body, code):
    before = snapshot(cluster)
    assert_error(alice.client.post("/workloads", json=body), 400, code)
    assert_unchanged(cluster, before)


@pytest.mark.parametrize(("fields", "code"), FORM_CASES)
def test_bad_workload_form_is_refused_and_changes_nothing(cluster, alice, fields, code):
    before = snapshot(cluster)
    assert_error(alice.client.post("/workloads", data=fields), 400, code)
    assert_unchanged(cluster, before)


@pytest.mark.parametrize(("raw", "code"), BODY_CASES)
def test_bad_json_body_is_refused_and_changes_nothing(cluster, alice, raw, code):
    before = snapshot(cluster)
    response = alice.client.post(
        "/workloads", data=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, code)
    assert_unchanged(cluster, before)


SAFE_DIR = re.compile(r"^\d+-[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")


@pytest.mark.parametrize(
    "name",
    [
        "фото 📷 café",
        "日本語の写真" * 33,  # 198 characters
        "x" * 200,
        ".",
        ".hidden",
        "-rf",
        "CON",
        "~root",
        "$(reboot)",
        "a;b|c&d`e`",
        "%2e%2e%2fescape",
        "  padded  ",
    ],
)
def test_odd_names_are_accepted_with_a_safe_directory(cluster, alice, name):
    response = alice.client.post("/workloads", json={"workload_name": name, "tags": NO_WORKER})
    assert response.status_code == 201, response.text
    workload = response.json()
    assert workload["workload_name"] == name.strip()
    wid = workload["workload_id"]
    conn = database(cluster)
    try:
        (dir_name,) = conn.execute("SELECT dir_name FROM workloads WHERE id = ?", (wid,)).fetchone()
    finally:
        conn.close()
    assert SAFE_DIR.match(dir_name), dir_name
    assert dir_name.startswith(f"{wid}-")
    upload = alice.client.upload(wid, image_bytes())
    assert upload.status_code == 201, upload.text
    root = Path(cluster.images_dir).resolve()
    stored = root / dir_name / "0.original.png"
    assert stored.is_file()
    assert stored.resolve().parent.parent == root
    listed = alice.client.get(f"/workloads/{wid}").json()
    assert listed["workload_name"] == name.strip()


USER_CASES = [
    pytest.param({"username": "", "password": "long-enough"}, "invalid_username", id="empty"),
    pytest.param({"username": "x" * 65, "password": "long-enough"}, "invalid_username", id="65"),
    pytest.param({"username": "a\x00b", "password": "long-enough"}, "invalid_username", id="nul"),
    pytest.param({"username": "a\nb", "password": "long-enough"}, "invalid_username", id="newline"),
    pytest.param({"username": 123, "password": "long-enough"}, "invalid_username", id="number"),
    pytest.param({"password": "long-enough"}, "invalid_username", id="no-username"),
    pytest.param({"username": "newuser1", "password": "short"}, "invalid_password", id="short"),
    pytest.param({"username": "newuser2", "password": 12345678}, "invalid_password", id="int-pw"),
    pytest.param({"username": "newuser3"}, "invalid_password", id="no-password"),
    pytest.param(
        {"username": "newuser4", "password": "long-enough", "role": "root"},
        "invalid_role",
        id="role-root",
    ),
    pytest.param(
        {"username": "newuser5", "password": "long-enough", "role": "worker"},
        "invalid_role",
        id="role-worker",
    ),
    pytest.param(
        {"username": "newuser6", "password": "\ud800" * 8},
        "invalid_password",
        id="lone-surrogate-password",  # regression test: password hashing once raised (500)
    ),
]


@pytest.mark.parametrize(("body", "code"), USER_CASES)
def test_bad_user_fields_create_no_user(cluster, admin, body, code):
    before = snapshot(cluster)
    assert_error(admin.post("/users", json=body), 400, code)
    assert_unchanged(cluster, before)


def test_a_lone_surrogate_password_change_is_refused(cluster, alice):
    """Regression test: a password with a lone surrogate (a JSON '\\ud800' escape) once
    reached the password hash, which cannot encode it, and answered 500."""
    before = snapshot(cluster)
    response = alice.client.request(
        "PATCH", f"/users/{alice.name}", json={"password": "\ud800" * 8}
    )
    assert_error(response, 400, "invalid_password")
    assert_unchanged(cluster, before)


@pytest.mark.parametrize(
    "name", ["nul%00", "%00", "%ED%A0%80"], ids=["nul", "only-nul", "bad-utf8"]
)
def test_an_account_name_no_datastore_holds_answers_404(cluster, admin, name):
    """PostgreSQL's text refuses NUL: such a name is no account's, not a failed query."""
    before = snapshot(cluster)
    assert_error(admin.get(f"/users/{name}"), 404, "not_found")
    assert_error(admin.delete(f"/users/{name}"), 404, "not_found")
    assert_unchanged(cluster, before)


def test_duplicate_and_unauthorised_user_creation_create_no_user(cluster, admin, alice):
    before = snapshot(cluster)
    duplicate = admin.post("/users", json={"username": alice.name, "password": "other-password"})
    assert_error(duplicate, 409, "duplicate_username")
    by_user = alice.client.post("/users", json={"username": "sneaky", "password": "long-enough"})
    assert_error(by_user, 403, "forbidden")
    assert_unchanged(cluster, before)
