"""Property-based fuzzing of POST /workloads, POST /images and GET /images/{k}.

Whatever arrives, the API never answers 5xx, every 4xx has the JSON error shape, and a refused
request stores nothing.

Each test runs twice. `corpus`: a fixed seed, so the same examples every run, a regression
corpus; it includes the inputs of bugs found and fixed here, as regression tests beside their
fixed cases in test_bad_ids.py and test_bad_fields.py: non-finite JSON numbers (NaN, Infinity)
anywhere, ids among them; URL numbers of 2**63 or more; and deeply nested JSON bodies.
`random`: a fresh seed every run, with a bounded budget; a failure prints the seed, and
DPIP_FUZZ_SEED=<seed> replays the same run.

Uploads are fuzzed in two tests: the bytes with valid fields, so that every example reaches
the image check (and some pass it), and the fields with a valid image.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, example, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import image_bytes
from tests.security.conftest import Actor, create_actor
from tests.security.helpers import assert_error_shape, snapshot

# DPIP_FUZZ_EXAMPLES=5000 for a longer hunt; the defaults keep the module to seconds.
CORPUS = settings(
    max_examples=int(os.environ.get("DPIP_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
RANDOM = settings(
    CORPUS,
    max_examples=int(os.environ.get("DPIP_FUZZ_RANDOM_EXAMPLES", "50")),
    derandomize=False,
)


@pytest.fixture(params=["corpus", "random"])
def fuzz(request) -> Callable:
    """Run a hypothesis test (a function given its strategies) the way the param names."""

    def run(test: Callable) -> None:
        if request.param == "corpus":
            CORPUS(test)()
            return
        run_seed = int(os.environ.get("DPIP_FUZZ_SEED") or random.randrange(2**32))
        print(f"random fuzz run with seed {run_seed}: DPIP_FUZZ_SEED={run_seed} replays it")
        seed(run_seed)(RANDOM(test))()

    return run


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


def test_fuzz_post_workloads_json(cluster, fuzzer, fuzz):
    @given(raw=(WORKLOAD_FIELDS | JSON_VALUES).map(_dump) | DEEP_JSON)
    def post(raw):
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

    fuzz(post)


def test_fuzz_post_workloads_form(cluster, fuzzer, fuzz):
    @given(
        fields=st.dictionaries(
            st.sampled_from(["workload_name", "filter", "radius", "tags"]) | st.text(max_size=8),
            st.text(max_size=60),
            max_size=5,
        )
    )
    def post(fields):
        before = _count_workloads(cluster)
        response = fuzzer.client.post("/workloads", data=fields)
        assert response.status_code in (201, 400, 409), response.text[:300]
        if response.status_code != 201:
            assert_error_shape(response)
            assert _count_workloads(cluster) == before

    fuzz(post)


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"RIFF"]
VALID_BY_FORMAT = {
    fmt: image_bytes(fmt, size=(8, 6)) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
}
VALID = list(VALID_BY_FORMAT.values())
# What the image check may answer, besides 201.
CHECK_REFUSALS = {(400, "not_an_image"), (400, "image_too_complex"), (413, "image_too_large")}


@st.composite
def mutated_image(draw) -> bytes:
    """A valid image with a few bytes changed, and half of the time cut short."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data) - 1)) :]
    return bytes(data)


UPLOAD_BYTES = (
    st.sampled_from(VALID)
    | mutated_image()
    | st.builds(bytes.__add__, st.sampled_from(MAGIC), st.binary(max_size=512))
)


def _patched(fmt: str, changes: dict[int, int]) -> bytes:
    data = bytearray(VALID_BY_FORMAT[fmt])
    for offset, value in changes.items():
        data[offset] = value
    return bytes(data)


# Images one or a few bytes away from valid that once made Pillow raise each kind of error
# the image check must translate (with this Pillow's encoders; any other version's bytes
# are still near misses worth trying).
NEAR_MISSES = [
    _patched("PNG", {65: 240}),  # SyntaxError: a bad chunk checksum
    _patched("BMP", {30: 206}),  # OSError: an unsupported compression
    _patched("JPEG", {612: 63}),  # OSError: truncated data
    _patched("WEBP", {24: 224}),  # OSError: no decoder for it
    _patched("TIFF", {24: 12, 210: 45, 36: 245, 161: 194}),  # ValueError: bad dimensions
    _patched("TIFF", {21: 219}),  # DecompressionBombError: 22 billion pixels
]


def _outcome(response) -> tuple[int, str]:
    if response.status_code == 201:
        return 201, "stored"
    assert_error_shape(response)
    return response.status_code, response.json()["error"]


def test_fuzz_upload_bytes(cluster, alice, fuzz):
    """Valid fields, fuzzed bytes: every example reaches the image check."""
    outcomes: Counter[tuple[int, str]] = Counter()

    @given(data=UPLOAD_BYTES)
    def upload(data):
        before = snapshot(cluster)
        response = alice.client.upload(alice.workload_id, data)
        outcome = _outcome(response)
        if data:  # an empty file is refused before the check
            outcomes[outcome] += 1
        event(f"{outcome[0]} {outcome[1]}")
        after = snapshot(cluster)
        assert after.temp_files == []
        if outcome[0] == 201:  # an image Pillow names, stored as sent and served as that
            stored = alice.client.get(
                f"/images/{response.json()['image_id']}", params={"workload_id": alice.workload_id}
            )
            assert stored.content == data
            with Image.open(io.BytesIO(data)) as image:
                assert stored.headers["Content-Type"] == Image.MIME[image.format]
            assert len(after.images) == len(before.images) + 1
        else:
            assert outcome in CHECK_REFUSALS, response.text[:300]
            assert after == before

    for near_miss in NEAR_MISSES:
        upload = example(data=near_miss)(upload)
    fuzz(upload)
    # The run reached the image check: both sides of it answered.
    assert outcomes[201, "stored"] > 0, outcomes
    assert outcomes[400, "not_an_image"] > 0, outcomes


def _maybe(valid, fuzzed: st.SearchStrategy) -> st.SearchStrategy:
    """The valid value half of the time, so that examples get past one field to the next."""
    return st.just(valid) | fuzzed


def test_fuzz_upload_fields(cluster, alice, bob, fuzz):
    """Fuzzed fields, a valid image: the fields never reach another user's workload."""

    @given(
        data=st.sampled_from(VALID),
        workload_id=_maybe(
            "own",
            st.sampled_from(["other", "missing"]) | st.text(max_size=12) | st.integers().map(str),
        ),
        kind=_maybe(None, st.sampled_from(["original", "filtered", ""]) | st.text(max_size=10)),
        image_id=_maybe(None, st.integers().map(str) | st.text(max_size=6)),
        field=_maybe("data", st.sampled_from(["file", "image"])),
        filename=ANY_TEXT.filter(lambda name: "\x00" not in name) | st.just("x.jpg"),
    )
    def upload(data, workload_id, kind, image_id, field, filename):
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
        name = filename.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        response = alice.client.post("/images", data=fields, files={field: (name, data)})
        assert response.status_code in (201, 400, 403, 404, 413), response.text[:300]
        event(f"{response.status_code}")
        after = snapshot(cluster)
        assert after.temp_files == []
        if response.status_code == 201:
            owned = {w["workload_id"] for w in alice.client.get("/workloads").json()["workloads"]}
            assert response.json()["workload_id"] in owned  # one of hers, never bob's
            assert len(after.images) == len(before.images) + 1
        else:
            assert_error_shape(response)
            assert after == before

    fuzz(upload)


def test_fuzz_get_image(cluster, alice, bob, fuzz):
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
    def get(number, workload_id, kind, where, extra):
        workload_id = {"own": alice.workload_id, "other": bob.workload_id}.get(
            workload_id, workload_id
        )
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

    fuzz(get)


def test_fuzz_image_paths(cluster, alice, fuzz):
    @given(
        segment=ANY_TEXT | st.integers(min_value=0).map(str) | st.integers(2**62, 2**64).map(str)
    )
    def get(segment):
        encoded = quote(segment.encode("utf-8", "surrogatepass"), safe="")
        response = alice.client.get(f"/images/{encoded}", params={"workload_id": alice.workload_id})
        assert response.status_code in (200, 400, 404), response.text[:300]
        if response.status_code != 200:
            assert_error_shape(response)

    fuzz(get)
