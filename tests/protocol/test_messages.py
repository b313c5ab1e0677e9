"""Wire messages: every type survives encode/decode; anything else is a DecodeError."""

from __future__ import annotations

import dataclasses
import json

import pytest

from protocol import (
    MESSAGE_TYPES,
    Ack,
    ControllerHeartbeat,
    DecodeError,
    JobAssignment,
    JobBatch,
    JobResult,
    JobResults,
    JobsQueued,
    JoinAccepted,
    JoinChallenge,
    JoinHello,
    JoinRefused,
    JoinRequest,
    Message,
    SubmitAnswer,
    Telemetry,
    WorkloadsProgressed,
    decode,
    encode,
)

SAMPLES: list[Message] = [
    JoinHello(worker_nonce="ab" * 16),
    JoinChallenge(controller_nonce="cd" * 16, controller_proof="ef" * 32),
    JoinRequest(
        worker_name="worker-1",
        tags=("gpu", "ssd"),
        concurrency=4,
        rpc_host="127.0.0.1",
        rpc_port=18861,
        controller_nonce="cd" * 16,
        proof="01" * 32,
        running_job_ids=(3, 7),
        token_id="membership-1",
        prefetch=2,
    ),
    JoinAccepted(
        worker_id=2,
        api_url="http://127.0.0.1:8080",
        worker_token="jwt.token.here",
        rpc_key="key",
        telemetry_port=40900,
        broadcast_port=40901,
        telemetry_interval_ms=1000,
        controller_instance="abc123",
        token_id="membership-1",
        proof="23" * 32,
    ),
    JoinRefused(reason="wrong join token", proof="45" * 32),
    Telemetry(
        worker_id=2,
        cpu_percent=12.5,
        memory_percent=40.25,
        gpu={"name": "H100", "util_percent": 3.0, "memory": {"used": 1, "total": 80}},
        running_job_ids=(1, 2, 3),
        prefetched_job_ids=(4, 5),
    ),
    JobBatch(
        jobs=(
            JobAssignment(
                job_id=11,
                workload_id=3,
                image_number=0,
                filter_name="blur",
                params={"radius": 2.5},
            ),
            JobAssignment(job_id=12, workload_id=3, image_number=1, filter_name="grayscale"),
        )
    ),
    JobResults(
        worker_id=2,
        results=(
            JobResult(job_id=11, outcome="failed", error="boom ✗", duration_ms=35),
            JobResult(job_id=12, outcome="returned"),
        ),
        worker_key="k",
    ),
    JobsQueued(),
    Ack(ok=False, detail="unexpected message"),
    ControllerHeartbeat(controller_instance="abc123", sent_at_ms=1, worker_ids=(2, 5)),
    WorkloadsProgressed(workload_ids=(3, 7)),
]

# Messages built with their defaults and the odd values (empty tuples, None).
DEFAULTS: list[Message] = [
    JoinRequest("w", (), 1, "h", 1, "n", "p"),
    JoinAccepted(1, "u", "t", "k", 1, 2, 3, "i"),
    JoinRefused("no"),
    Telemetry(1, 0.0, 0.0, None, ()),
    JobBatch((JobAssignment(1, 1, 1, "grayscale"),)),
    JobBatch(()),
    JobResults(1, (JobResult(1, "done"),)),
    JobsQueued(),
    Ack(),
    WorkloadsProgressed(),
]


def test_samples_cover_every_message_type() -> None:
    assert {type(sample) for sample in SAMPLES} == set(MESSAGE_TYPES.values())
    assert {sample.kind for sample in SAMPLES} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message", SAMPLES + DEFAULTS, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    data = encode(message)
    assert isinstance(data, bytes)
    assert message.encode() == data
    decoded = decode(data)
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize("message", SAMPLES + DEFAULTS, ids=lambda m: type(m).__name__)
def test_round_trip_with_expected_type(message: Message) -> None:
    assert decode(encode(message), type(message)) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_tuple_fields_stay_tuples(message: Message) -> None:
    decoded = decode(encode(message))
    for field in dataclasses.fields(message):
        original = getattr(message, field.name)
        value = getattr(decoded, field.name)
        assert type(value) is type(original), field.name
        if isinstance(original, tuple):
            assert value == original


def test_encoding_is_tagged_json() -> None:
    payload = json.loads(encode(JobResults(1, (JobResult(2, "done"),), worker_key="k")))
    assert payload == {
        "kind": "results",
        "worker_id": 1,
        "results": [{"job_id": 2, "outcome": "done", "error": "", "duration_ms": 0}],
        "worker_key": "k",
    }


def test_kinds_are_unique() -> None:
    assert len(MESSAGE_TYPES) == 12
    assert all(cls.kind == kind for kind, cls in MESSAGE_TYPES.items())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"\x89PNG\r\n\x1a\n",
        b"not json",
        b"{",
        b"[]",
        b"[1, 2]",
        b"123",
        b"null",
        b'"join"',
        b"{}",
        b'{"kind": null}',
        b'{"kind": ["join"]}',
        b'{"kind": {"a": 1}}',
        b'{"kind": 1}',
    ],
)
def test_garbage_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_unknown_kind() -> None:
    with pytest.raises(DecodeError, match="not a protocol message"):
        decode(b'{"kind": "launch_missiles", "target": 1}')


def required_fields(message: Message) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(message)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


@pytest.mark.parametrize(
    ("message", "missing"),
    [(sample, name) for sample in SAMPLES for name in required_fields(sample)],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_missing_required_field(message: Message, missing: str) -> None:
    payload = json.loads(encode(message))
    del payload[missing]
    with pytest.raises(DecodeError):
        decode(json.dumps(payload).encode())


def test_fields_with_defaults_may_be_left_out() -> None:
    assert decode(b'{"kind": "ack"}') == Ack(ok=True, detail="")
    assert decode(b'{"kind": "jobs_queued"}') == JobsQueued()
    assert decode(
        b'{"kind": "jobs", "jobs": [{"job_id": 1, "workload_id": 2, "image_number": 3,'
        b' "filter_name": "grayscale"}]}'
    ) == JobBatch((JobAssignment(1, 2, 3, "grayscale", {}),))


@pytest.mark.parametrize(
    ("message", "dropped"),
    [
        (Telemetry(1, 0.0, 0.0, None, ()), "worker_name"),
        (Telemetry(1, 0.0, 0.0, None, ()), "sent_at_ms"),
        (ControllerHeartbeat("abc123", 1), "interval_ms"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_fields_nothing_read_are_gone(message: Message, dropped: str) -> None:
    payload = json.loads(encode(message))
    payload[dropped] = 1
    with pytest.raises(DecodeError, match=dropped):
        decode(json.dumps(payload).encode())


def _batch_payload(**job_fields) -> dict:
    job = {"job_id": 1, "workload_id": 2, "image_number": 3, "filter_name": "grayscale"}
    return {"kind": "jobs", "jobs": [{**job, **job_fields}]}


@pytest.mark.parametrize(
    "payload",
    [
        _batch_payload(attempt=1),
        _batch_payload(job_id="1"),
        _batch_payload(job_id=True),
        _batch_payload(params=[1, 2]),
        {"kind": "jobs", "jobs": [{"job_id": 1}]},
        {"kind": "jobs", "jobs": [7]},
        {"kind": "jobs", "jobs": {"job_id": 1}},
        {"kind": "jobs", "jobs": None},
        {"kind": "results", "worker_id": 1, "results": [{"job_id": 1, "outcome": 3}]},
        {"kind": "results", "worker_id": 1, "results": [{"job_id": 1, "outcome": "done", "x": 1}]},
        {"kind": "results", "worker_id": 1, "results": [["job_id", 1]]},
    ],
    ids=[
        "job-unknown-field",
        "job-id-string",
        "job-id-bool",
        "job-params-list",
        "job-missing-fields",
        "job-not-an-object",
        "jobs-an-object",
        "jobs-null",
        "result-outcome-int",
        "result-unknown-field",
        "result-a-list",
    ],
)
def test_items_of_a_batch_are_checked_like_fields(payload: dict) -> None:
    """A batch's jobs and results are each checked as a message's fields are."""
    with pytest.raises(DecodeError):
        decode(json.dumps(payload).encode())


def test_items_of_a_batch_decode_to_their_dataclasses() -> None:
    batch = decode(json.dumps(_batch_payload(params={"radius": 2})).encode(), JobBatch)
    assert batch.jobs == (JobAssignment(1, 2, 3, "grayscale", {"radius": 2}),)
    assert type(batch.jobs) is tuple


@pytest.mark.parametrize("answer", list(SubmitAnswer), ids=lambda a: a.name)
def test_submit_answers_travel_as_plain_strings(answer: SubmitAnswer) -> None:
    """rpyc sends only exact builtin types by value: a str subclass would go as a proxy."""
    assert type(answer.value) is str
    assert SubmitAnswer(answer.value) is answer


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_unknown_field(message: Message) -> None:
    payload = json.loads(encode(message))
    payload["surprise"] = 1
    with pytest.raises(DecodeError):
        decode(json.dumps(payload).encode())


def test_unknown_list_field() -> None:
    payload = json.loads(encode(JobsQueued()))
    payload["surprise"] = [1, 2]
    with pytest.raises(DecodeError):
        decode(json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Ack(), JobResults),
        (JobResults(1, ()), Telemetry),
        (JoinRefused("no"), JoinAccepted),
        (JobsQueued(), ControllerHeartbeat),
        (JoinAccepted(1, "u", "t", "k", 1, 2, 3, "i"), JoinRequest),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else type(v).__name__,
)
def test_wrong_expected_type(message: Message, expected: type[Message]) -> None:
    with pytest.raises(DecodeError, match=f"expected {expected.kind}, got {message.kind}"):
        decode(encode(message), expected)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_deeply_nested_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode(b"[" * 100_000)


@pytest.mark.parametrize(
    "payload",
    [
        {
            "kind": "join",
            "worker_name": "w",
            "tags": [],
            "concurrency": 1,
            "rpc_host": "h",
            "rpc_port": 1,
            "controller_nonce": "n",
            "proof": 5,
        },
        {
            "kind": "telemetry",
            "worker_id": 2,
            "cpu_percent": "high",
            "memory_percent": 0,
            "gpu": None,
            "running_job_ids": 7,
        },
    ],
    ids=["join-proof-int", "telemetry-strings"],
)
def test_wrongly_typed_fields_are_a_decode_error(payload: dict) -> None:
    with pytest.raises(DecodeError):
        decode(json.dumps(payload).encode())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(json.dumps({"kind": "x" * 900_000}).encode(), id="long-kind"),
        pytest.param(json.dumps({"kind": "ack", "x" * 900_000: 1}).encode(), id="long-field-name"),
        pytest.param(b"{" + b" " * 900_000, id="long-garbage"),
    ],
)
def test_a_decode_error_quotes_little_of_the_peers_text(data: bytes) -> None:
    """Regression test: the message quoted the peer's kind or field name whole, so each
    refusal of a 900 KB message wrote 900 KB of log."""
    with pytest.raises(DecodeError) as raised:
        decode(data)
    assert len(str(raised.value)) < 200
