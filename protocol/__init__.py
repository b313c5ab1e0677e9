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
    decode,
    encode,
)
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
    "decode",
    "encode",
]
