"""Wire protocol shared by the API, controller, scheduler and workers."""

from protocol.messages import (
    MESSAGE_TYPES,
    Ack,
    ControllerHeartbeat,
    DecodeError,
    JobAssignment,
    JobResult,
    JobsQueued,
    JoinAccepted,
    JoinRefused,
    JoinRequest,
    Message,
    Telemetry,
    WorkloadsProgressed,
    decode,
    encode,
)
from protocol.progress_events import progress_events_address
from protocol.statuses import JobOutcome, JobStatus, UserRole, WorkloadStatus

__all__ = [
    "MESSAGE_TYPES",
    "Ack",
    "ControllerHeartbeat",
    "DecodeError",
    "JobAssignment",
    "JobOutcome",
    "JobResult",
    "JobStatus",
    "JobsQueued",
    "JoinAccepted",
    "JoinRefused",
    "JoinRequest",
    "Message",
    "Telemetry",
    "UserRole",
    "WorkloadStatus",
    "WorkloadsProgressed",
    "decode",
    "encode",
    "progress_events_address",
]
