"""Bad numbers where the API expects ids: image numbers, workload ids and the image type."""

from __future__ import annotations

import pytest

from tests.conftest import image_bytes
from tests.security.helpers import assert_error, assert_unchanged, snapshot

pytestmark = pytest.mark.both_engines  # its attacks reach the datastore


def _json_get(client, path: str, raw: str):
    return client.request("GET", path, data=raw, headers={"Content-Type": "application/json"})


DOWNLOAD_CASES = [
    pytest.param(lambda c, w: c.get("/images/0"), 400, "missing_field", id="no-workload-id"),
    *[
        pytest.param(
            lambda c, w, value=value: c.get("/images/0", params={"workload_id": value}),
            400,
            "invalid_field",
            id=f"workload-id-{label}",
        )
        for label, value in [
            ("text", "abc"),
            ("negative", "-1"),
            ("over-2-62", str(2**62 + 1)),
            ("exponent", "1e3"),
            ("hex", "0x10"),
            ("5000-digits", "9" * 5000),
        ]
    ],
    *[
        pytest.param(
            lambda c, w, raw=raw: _json_get(c, "/images/0", raw),
            400,
            "invalid_field",
            id=f"json-workload-id-{label}",
        )
        for label, raw in [
            ("list", '{"workload_id": [1]}'),
            ("object", '{"workload_id": {"a": 1}}'),
            ("bool", '{"workload_id": true}'),
            ("nan", '{"workload_id": NaN}'),
            # non-finite floats once overflowed int() in parse_id (500); regression tests
            ("infinity", '{"workload_id": Infinity}'),
            ("1e400", '{"workload_id": 1e400}'),
        ]
    ],
    # Ids that once read as another whole number (1.5 as 1, " 5" or Arabic-Indic 5 as 5): the
    # image of the workload they seemed to name was served. Regression tests.
    *[
        pytest.param(
            lambda c, w, spell=spell: c.request("GET", "/images/0", json={"workload_id": spell(w)}),
            400,
            "invalid_field",
            id=f"json-workload-id-{label}",
        )
        for label, spell in [
            ("fraction", lambda w: w + 0.5),
            ("float", float),
            ("string", str),
        ]
    ],
    *[
        pytest.param(
            lambda c, w, spell=spell: c.get("/images/0", params={"workload_id": spell(w)}),
            400,
            "invalid_field",
            id=f"workload-id-{label}",
        )
        for label, spell in [
            ("leading-space", lambda w: f" {w}"),
            ("plus", lambda w: f"+{w}"),
            ("underscore", lambda w: f"{w}_0"),
            ("arabic-indic-digits", lambda w: "".join(chr(0x660 + int(d)) for d in str(w))),
        ]
    ],
    pytest.param(
        lambda c, w: c.upload(f" {w}", image_bytes()),
        400,
        "invalid_field",
        id="upload-workload-id-leading-space",
    ),
    pytest.param(
        lambda c, w: c.get(f"/workloads/{w}", params={"wait": "0.1", "seen": "1_0"}),
        400,
        "invalid_field",
        id="seen-underscore",
    ),
    pytest.param(
        lambda c, w: c.get("/images/0", params={"workload_id": w, "type": "bogus"}),
        400,
        "invalid_field",
        id="type-bogus",
    ),
    pytest.param(
        lambda c, w: c.get("/images/0", params={"workload_id": w, "type": "../original"}),
        400,
        "invalid_field",
        id="type-path",
    ),
    pytest.param(
        lambda c, w: c.get("/images/7", params={"workload_id": w}), 404, "not_found", id="no-image"
    ),
    pytest.param(
        lambda c, w: c.get("/images/-1", params={"workload_id": w}),
        404,
        "not_found",
        id="negative-number",
    ),
    pytest.param(
        lambda c, w: c.get("/images/abc", params={"workload_id": w}),
        404,
        "not_found",
        id="text-number",
    ),
    pytest.param(
        lambda c, w: c.get("/images/..%2f..%2fetc%2fpasswd", params={"workload_id": w}),
        404,
        "not_found",
        id="path-number",
    ),
    pytest.param(
        lambda c, w: c.get("/images/" + "9" * 5000, params={"workload_id": w}),
        404,
        "not_found",
        id="5000-digit-number",
    ),
    pytest.param(
        lambda c, w: c.get(f"/images/{2**63 - 1}", params={"workload_id": w}),
        404,
        "not_found",
        id="number-2-63-minus-1",
    ),
    # 2**63 and more once reached sqlite3 and overflowed (500); regression tests for the fix
    pytest.param(
        lambda c, w: c.get(f"/images/{2**63}", params={"workload_id": w}),
        404,
        "not_found",
        id="number-2-63",
    ),
    pytest.param(
        lambda c, w: c.get(f"/images/{10**30}", params={"workload_id": w}),
        404,
        "not_found",
        id="number-10-30",
    ),
    # Werkzeug's `int` converter matched any script's digits: this was workload w.
    pytest.param(
        lambda c, w: c.get("/workloads/" + "".join(chr(0x660 + int(d)) for d in str(w))),
        404,
        "not_found",
        id="workload-arabic-indic-digits",
    ),
    pytest.param(
        lambda c, w: c.get("/images/\u0660", params={"workload_id": w}),
        404,
        "not_found",
        id="image-arabic-indic-zero",
    ),
    pytest.param(lambda c, w: c.get("/workloads/-1"), 404, "not_found", id="workload-negative"),
    pytest.param(lambda c, w: c.get("/workloads/abc"), 404, "not_found", id="workload-text"),
    pytest.param(
        lambda c, w: c.get(f"/workloads/{2**63 - 1}"), 404, "not_found", id="workload-2-63-minus-1"
    ),
    pytest.param(
        lambda c, w: c.get(f"/workloads/{2**63}"),
        404,
        "not_found",
        id="workload-2-63",
    ),
]


@pytest.mark.parametrize(("make_request", "status", "code"), DOWNLOAD_CASES)
def test_bad_ids_are_refused(cluster, alice, make_request, status, code):
    before = snapshot(cluster)
    assert_error(make_request(alice.client, alice.workload_id), status, code)
    assert_unchanged(cluster, before)
