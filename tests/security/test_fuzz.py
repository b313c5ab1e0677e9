"""Property-based fuzzing of POST /workloads, POST /images and GET /images/{k}.

Whatever arrives, the API never answers 5xx, every 4xx has the JSON error shape, and a refused
request stores nothing. Examples are bounded and derandomized, so a run is quick and repeatable.

The strategies include the inputs of bugs found and fixed here, as regression tests beside
their fixed cases in test_bad_ids.py and test_bad_fields.py: non-finite JSON numbers (NaN,
Infinity) anywhere, ids among them; URL numbers of 2**63 or more; and deeply nested JSON bodies.
"""

from __future__ import annotations

import json
import math
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import image_bytes
from tests.security.conftest import Actor, create_actor
from tests.security.helpers import assert_error_shape, snapshot

# DPIP_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the module to a few seconds.
FUZZ = settings(
    max_examples=int(os.environ.get("DPIP_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text with any code point, lone surrogates included (JSON can carry them as \\ud800 escapes).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT  # NaN, ±Infinity
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
WORKLOAD_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "workload_name": JSON_VALUES | st.text(max_size=250),
        "filter": st.sampled_from(["blur", "grayscale", "sepia", ""]) | JSON_VALUES,
        "radius": st.floats() | st.integers() | st.text(max_size=12) | JSON_VALUES,
        "tags": st.lists(st.text(max_size=70), max_size=20) | st.text(max_size=80) | JSON_VALUES,
        "tags_extra": JSON_VALUES,
    },
)


@pytest.fixture(scope="module")
def fuzzer(cluster, admin) -> Actor:
    """Creates the fuzzed workloads. They may lack the `nowhere` tag, so nobody uploads to
    them: the upload fuzzing below (as alice) can only reach alice's workloads, all tagged."""
    return create_actor(cluster, admin, "fuzzer")


def _dump(value) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity literals, as Python reads them


# Nested far deeper than the JSON parser can recurse: once a RecursionError and a 500.
DEEP_JSON = st.integers(1_000, 100_000).map(lambda depth: "[" * depth + "]" * depth) | (
    st.integers(1_000, 100_000).map(lambda depth: '{"a": ' * depth + "1" + "}" * depth)
)


def _count_workloads(cluster) -> int:
    return len(snapshot(cluster).workloads)


@FUZZ
@given(raw=(WORKLOAD_FIELDS | JSON_VALUES).map(_dump) | DEEP_JSON)
def test_fuzz_post_workloads_json(cluster, fuzzer, raw):
    before = _count_workloads(cluster)
    response = fuzzer.client.post(
        "/workloads", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (201, 400, 409), response.text[:300]
    if response.status_code == 201:
        assert isinstance(response.json()["workload_id"], int)
    else:
        assert_error_shape(response)
        assert _count_workloads(cluster) == before


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["workload_name", "filter", "radius", "tags"]) | st.text(max_size=8),
        st.text(max_size=60),
        max_size=5,
    )
)
def test_fuzz_post_workloads_form(cluster, fuzzer, fields):
    before = _count_workloads(cluster)
    response = fuzzer.client.post("/workloads", data=fields)
    assert response.status_code in (201, 400, 409), response.text[:300]
    if response.status_code != 201:
        assert_error_shape(response)
        assert _count_workloads(cluster) == before


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"RIFF"]
VALID = [image_bytes(fmt, size=(8, 6)) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")]


@st.composite
def upload_bytes(draw) -> bytes:
    if draw(st.booleans()):  # a valid image, maybe mutated or cut
        data = bytearray(draw(st.sampled_from(VALID)))
        for _ in range(draw(st.integers(0, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data[: draw(st.integers(0, len(data)))])
    return draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=512))


@FUZZ
@given(
    data=upload_bytes(),
    workload_id=st.sampled_from(["own", "other", "missing"])
    | st.text(max_size=12)
    | st.integers().map(str),
    kind=st.sampled_from(["original", "filtered", "", None]) | st.text(max_size=10),
    image_id=st.none() | st.integers().map(str) | st.text(max_size=6),
    field=st.sampled_from(["data", "file", "image"]),
    filename=ANY_TEXT.filter(lambda name: "\x00" not in name) | st.just("x.jpg"),
)
def test_fuzz_post_images(cluster, alice, bob, data, workload_id, kind, image_id, field, filename):
    workload_id = {
        "own": alice.workload_id,
        "other": bob.workload_id,
        "missing": alice.workload_id + 1_000_000,
    }.get(workload_id, workload_id)
    fields = {"workload_id": workload_id}
    if kind is not None:
        fields["type"] = kind
    if image_id is not None:
        fields["image_id"] = image_id
    before = snapshot(cluster)
    response = alice.client.post(
        "/images",
        data=fields,
        files={field: (filename.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), data)},
    )
    assert response.status_code in (201, 400, 403, 404, 413), response.text[:300]
    after = snapshot(cluster)
    assert after.temp_files == []
    if response.status_code == 201:
        owned = {w["workload_id"] for w in alice.client.get("/workloads").json()["workloads"]}
        assert response.json()["workload_id"] in owned  # one of hers, never bob's
        assert len(after.images) == len(before.images) + 1
    else:
        assert_error_shape(response)
        assert after == before


@FUZZ
@given(
    number=st.integers(min_value=0) | st.integers(2**62, 2**64) | st.sampled_from([0, 1]),
    workload_id=st.sampled_from(["own", "other"])
    | st.integers(-(2**70), 2**70).map(str)
    | st.floats()
    | st.sampled_from([math.inf, -math.inf, math.nan])  # JSON literals; "inf", "nan" as text
    | st.text(max_size=12),
    kind=st.none() | st.sampled_from(["original", "filtered"]) | st.text(max_size=10),
    where=st.sampled_from(["query", "form", "json"]),
    extra=st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)
def test_fuzz_get_image(cluster, alice, bob, number, workload_id, kind, where, extra):
    workload_id = {"own": alice.workload_id, "other": bob.workload_id}.get(workload_id, workload_id)
    fields = {**extra, "workload_id": workload_id}
    if kind is not None:
        fields["type"] = kind
    path = f"/images/{number}"
    # lone surrogates go as the bytes they would be (invalid UTF-8), which requests can send
    wire = {k: str(v).encode("utf-8", "surrogatepass") for k, v in fields.items()}
    if where == "query":
        response = alice.client.get(path, params=wire)
    elif where == "form":
        response = alice.client.request("GET", path, data=wire)
    else:
        response = alice.client.request(
            "GET", path, data=_dump(fields), headers={"Content-Type": "application/json"}
        )
    assert response.status_code in (200, 400, 404), response.text[:300]
    if response.status_code == 200:
        assert response.headers["Content-Type"].startswith("image/")
    else:
        assert_error_shape(response)


@FUZZ
@given(segment=ANY_TEXT | st.integers(min_value=0).map(str) | st.integers(2**62, 2**64).map(str))
def test_fuzz_image_paths(cluster, alice, segment):
    encoded = quote(segment.encode("utf-8", "surrogatepass"), safe="")
    response = alice.client.get(f"/images/{encoded}", params={"workload_id": alice.workload_id})
    assert response.status_code in (200, 400, 404), response.text[:300]
    if response.status_code != 200:
        assert_error_shape(response)
