"""DPIP's Python client: the REST API as calls with typed answers, over HTTP only.

`Client(url)` is the entry point; user-guide.md ("Python client") shows it at work.
"""

from __future__ import annotations

from client.api import Client
from client.errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotAuthenticated,
    NotFound,
    RateLimited,
    RequestTimedOut,
    ServerError,
    TooLarge,
    UnexpectedAnswer,
    UploadSourceError,
    WaitTimedOut,
)
from client.models import (
    ActiveWorkload,
    FailedImage,
    ImageCounts,
    ImageInfo,
    Manifest,
    ManifestEntry,
    Status,
    UploadedImage,
    User,
    Worker,
    Workload,
)
from client.retries import RetryPolicy
from client.uploads import UploadItem

__all__ = [
    "ActiveWorkload",
    "ApiError",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "FailedImage",
    "Forbidden",
    "ImageCounts",
    "ImageInfo",
    "Manifest",
    "ManifestEntry",
    "NotAuthenticated",
    "NotFound",
    "RateLimited",
    "RequestTimedOut",
    "RetryPolicy",
    "ServerError",
    "Status",
    "TooLarge",
    "UnexpectedAnswer",
    "UploadItem",
    "UploadSourceError",
    "UploadedImage",
    "User",
    "WaitTimedOut",
    "Worker",
    "Workload",
]
