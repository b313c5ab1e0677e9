"""Messages exchanged over nng and rpyc: frozen dataclasses encoded as tagged JSON.

Every duration on the wire is in milliseconds. Both sides import these classes, so a
field added here is added for everyone.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from foundation import defaults
from foundation.errors import DPIPError


class DecodeError(DPIPError, ValueError):
    """Raised when bytes from the network are not a valid protocol message."""


@dataclass(frozen=True)
class Message:
    """Base of every wire message; `kind` tags it in the JSON."""

    kind: ClassVar[str] = ""

    def encode(self) -> bytes:
        """Serialize to tagged JSON bytes."""
        return encode(self)


@dataclass(frozen=True)
class JoinHello(Message):
    """Worker → controller (req/rep): open a join; answered by a JoinChallenge.

    The join token never crosses the wire: each side proves it knows it with an HMAC over
    both sides' fresh nonces (`protocol/join_proof.py`).
    """

    kind: ClassVar[str] = "join_hello"
    worker_nonce: str


@dataclass(frozen=True)
class JoinChallenge(Message):
    """Controller → worker: the controller's nonce, and its proof that it knows the token."""

    kind: ClassVar[str] = "join_challenge"
    controller_nonce: str
    controller_proof: str


@dataclass(frozen=True)
class JoinRequest(Message):
    """Worker → controller (req/rep): ask to join the cluster, answering a JoinChallenge."""

    kind: ClassVar[str] = "join"
    worker_name: str
    tags: tuple[str, ...]
    concurrency: int
    rpc_host: str
    rpc_port: int
    controller_nonce: str  # the challenge this request answers
    proof: str  # the worker's proof over both nonces
    running_job_ids: tuple[int, ...] = ()  # every job it holds, prefetched ones included
    token_id: str = ""  # the membership a re-joining worker holds, to keep it and its jobs
    prefetch: int = 0  # jobs it takes beyond each slot, waiting to start


@dataclass(frozen=True)
class JoinAccepted(Message):
    """Controller → worker: the worker's identity and where to talk next."""

    kind: ClassVar[str] = "join_accepted"
    worker_id: int
    api_url: str
    worker_token: str
    rpc_key: str
    telemetry_port: int
    broadcast_port: int
    telemetry_interval_ms: int
    controller_instance: str
    token_expires_at_ms: int = 0  # the worker re-joins for a fresh token halfway there
    accepted_at_ms: int = 0  # controller clock; heartbeats sent before this are stale
    token_id: str = ""  # the membership `worker_token` belongs to; it dies with it
    proof: str = ""  # the controller's proof over both nonces and this message


# The API's error code (401) for a worker token whose membership (`token_id`) ended: the
# worker was declared dead or joined anew, so its jobs were taken back.
MEMBERSHIP_ENDED = "membership_ended"


@dataclass(frozen=True)
class JoinRefused(Message):
    """Controller → worker: the join was refused (bad join token, bad fields)."""

    kind: ClassVar[str] = "join_refused"
    reason: str
    proof: str = ""  # as in JoinAccepted; none when the worker proved nothing


@dataclass(frozen=True)
class Telemetry(Message):
    """Worker → controller (pub/sub): load figures, about once per interval."""

    kind: ClassVar[str] = "telemetry"
    worker_id: int
    cpu_percent: float  # the host's, as placement weighs it
    memory_percent: float  # the host's
    gpu: dict[str, Any] | None
    running_job_ids: tuple[int, ...]  # started: their pool processes have them
    worker_key: str = ""  # the rpc key of the worker's join: proves who sends this
    # The worker's own load: its process and its pool's, which tells apart workers on one host.
    process_cpu_percent: float = 0.0
    process_rss_bytes: int = 0
    prefetched_job_ids: tuple[int, ...] = ()  # taken, waiting for a free slot

    @property
    def gpu_percent(self) -> float | None:
        """The GPU's utilisation, when the worker reports a GPU."""
        return (self.gpu or {}).get("utilization_percent")


@dataclass(frozen=True)
class JobAssignment:
    """One job of a JobBatch: filter one original image."""

    job_id: int
    workload_id: int
    image_number: int
    filter_name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobBatch(Message):
    """Scheduler → worker (rpyc `submit_jobs`): one or more jobs, answered one by one."""

    kind: ClassVar[str] = "jobs"
    jobs: tuple[JobAssignment, ...]


@dataclass(frozen=True)
class JobResult:
    """One job of a JobResults: how it ended on the worker."""

    job_id: int
    outcome: str  # a JobOutcome value
    error: str = ""
    duration_ms: int = 0  # its share of its batch's time; the scheduler sizes prefetch by it


@dataclass(frozen=True)
class JobResults(Message):
    """Worker → controller (req/rep): how one or more jobs ended."""

    kind: ClassVar[str] = "results"
    worker_id: int
    results: tuple[JobResult, ...]
    worker_key: str = ""  # the rpc key of the worker's join: proves who sends this


@dataclass(frozen=True)
class JobsQueued(Message):
    """API → controller (req/rep): new jobs wait in the datastore."""

    kind: ClassVar[str] = "jobs_queued"


@dataclass(frozen=True)
class Ack(Message):
    """Controller → requester: the request was taken."""

    kind: ClassVar[str] = "ack"
    ok: bool = True
    detail: str = ""


@dataclass(frozen=True)
class ControllerHeartbeat(Message):
    """Controller → all workers (pub/sub): the controller lives; which instance it is."""

    kind: ClassVar[str] = "heartbeat"
    controller_instance: str
    sent_at_ms: int
    worker_ids: tuple[int, ...] = ()  # workers the scheduler counts on; others must re-join


@dataclass(frozen=True)
class WorkloadsProgressed(Message):
    """Controller → API processes (pub/sub): jobs of these workloads finished or failed.

    Only a wake-up call: whoever waits re-reads the datastore, so a lost or extra message
    costs nothing but a later or an idle look.
    """

    kind: ClassVar[str] = "workloads_progressed"
    workload_ids: tuple[int, ...] = ()


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.kind: cls
    for cls in (
        JoinHello,
        JoinChallenge,
        JoinRequest,
        JoinAccepted,
        JoinRefused,
        Telemetry,
        JobBatch,
        JobResults,
        JobsQueued,
        Ack,
        ControllerHeartbeat,
        WorkloadsProgressed,
    )
}


def excerpt(text: str, limit: int = defaults.LOG_QUOTE_CHARS) -> str:
    """Return `text` cut to `limit` characters, saying how long it was.

    For a peer's text in an error or a log line: the peer chooses its length.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def encode(message: Message) -> bytes:
    """Serialize a message to tagged JSON bytes."""
    payload = dataclasses.asdict(message)
    payload["kind"] = message.kind
    return json.dumps(payload, separators=(",", ":")).encode()


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value fits a field's type hint (the few shapes messages use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, arg) for arg in args)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(key, str) for key in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)


class _WrongType(Exception):
    """A decoded value does not fit its field (turned into a DecodeError naming the field)."""


def _convert(value: Any, hint: Any) -> Any:
    """The field value of type `hint` that a decoded JSON value stands for: lists become
    tuples and objects the dataclasses of items (a JobBatch's jobs, say), each checked."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise _WrongType
        return tuple(_convert(item, typing.get_args(hint)[0]) for item in value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _WrongType
        return _build(hint, value)
    if not _conforms(value, hint):
        raise _WrongType
    return value


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {name: hint for name, hint in typing.get_type_hints(cls).items() if name in names}


def _build(cls: type, payload: dict[str, Any]) -> Any:
    """An instance of the dataclass `cls` from its decoded fields, each checked."""
    hints = _field_hints(cls)
    values = {}
    for name, value in payload.items():
        try:
            if name not in hints:
                raise _WrongType
            values[name] = _convert(value, hints[name])
        except _WrongType:
            label = getattr(cls, "kind", "") or cls.__name__
            raise DecodeError(f"field {excerpt(name)!r} of {label} has a wrong type") from None
    return cls(**values)


def decode(data: bytes, expected: type[Message] | None = None) -> Message:
    """Parse tagged JSON bytes into a message, optionally of one expected type.

    Field values are checked against the dataclass's type hints, so a peer cannot make a
    handler fail later on a wrongly typed field.
    """
    try:
        payload = json.loads(data)
        message = _build(MESSAGE_TYPES[payload.pop("kind")], payload)
    except DecodeError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise DecodeError(f"not a protocol message: {excerpt(str(e))}") from e
    if expected is not None and not isinstance(message, expected):
        raise DecodeError(f"expected {expected.kind}, got {message.kind}")
    return message
