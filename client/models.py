"""What the API answers, as frozen dataclasses: each built from its JSON in one place.

`decode(Model, body)` builds one and turns a body of the wrong shape into
`UnexpectedAnswer`, so a missing field never surfaces as a bare KeyError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from client.errors import UnexpectedAnswer

T = TypeVar("T")


def decode(build: Callable[[Any], T], body: Any) -> T:
    """`build(body)`, with a body of the wrong shape raised as UnexpectedAnswer."""
    try:
        return build(body)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UnexpectedAnswer(f"the answer is not the DPIP API's: {e!r}") from e


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _optional(convert: Callable[[Any], T], value: Any) -> T | None:
    return None if value is None else convert(value)


@dataclass(frozen=True)
class User:
    """An account: its name and role (`user` or `admin`)."""

    username: str
    role: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> User:
        return cls(str(body["username"]), str(body["role"]))


@dataclass(frozen=True)
class ImageCounts:
    """A workload's images by job status."""

    total: int
    queued: int
    running: int
    done: int
    failed: int

    @property
    def finished(self) -> int:
        """Images done or failed: what the long poll counts."""
        return self.done + self.failed

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ImageCounts:
        return cls(
            int(body["total"]),
            int(body["queued"]),
            int(body["running"]),
            int(body["done"]),
            int(body["failed"]),
        )


@dataclass(frozen=True)
class FailedImage:
    """An image that failed every attempt, with the last error."""

    image_id: int
    error: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> FailedImage:
        return cls(int(body["image_id"]), str(body["error"]))


@dataclass(frozen=True)
class Workload:
    """A workload and its progress. `filtered_images` and `failed_images` are None where the
    API leaves them out (`workloads()` lists)."""

    id: int
    name: str
    filter: str
    params: Mapping[str, Any]
    tags: tuple[str, ...]
    status: str  # scheduling, running or completed
    progress: float  # the share of its images finished, 0 to 1
    running_jobs: int
    images: ImageCounts
    created_at: datetime
    filtered_images: tuple[int, ...] | None = None
    failed_images: tuple[FailedImage, ...] | None = None

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    @property
    def radius(self) -> float | None:
        """The blur radius; None for other filters."""
        return _optional(float, self.params.get("radius"))

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Workload:
        filtered, failed = body.get("filtered_images"), body.get("failed_images")
        return cls(
            id=int(body["workload_id"]),
            name=str(body["workload_name"]),
            filter=str(body["filter"]),
            params=MappingProxyType(dict(body["params"])),
            tags=tuple(str(tag) for tag in body["tags"]),
            status=str(body["status"]),
            progress=float(body["progress"]),
            running_jobs=int(body["running_jobs"]),
            images=ImageCounts.from_json(body["images"]),
            created_at=_time(body["created_at"]),
            filtered_images=_optional(lambda numbers: tuple(map(int, numbers)), filtered),
            failed_images=_optional(lambda items: tuple(map(FailedImage.from_json, items)), failed),
        )


@dataclass(frozen=True)
class ImageInfo:
    """One image of a workload as `GET /workloads/{id}/images` lists it. `filename` and
    `size` are None for images stored before DPIP kept them."""

    image_id: int
    filename: str | None
    size: int | None
    format: str
    width: int
    height: int
    status: str  # queued, running, done or failed
    error: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ImageInfo:
        return cls(
            image_id=int(body["image_id"]),
            filename=_optional(str, body["filename"]),
            size=_optional(int, body["size"]),
            format=str(body["format"]),
            width=int(body["width"]),
            height=int(body["height"]),
            status=str(body["status"]),
            error=_optional(str, body["error"]),
        )


@dataclass(frozen=True)
class UploadedImage:
    """An image the API stored: its number in the workload and the filename it kept."""

    image_id: int
    filename: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> UploadedImage:
        return cls(int(body["image_id"]), _optional(str, body["filename"]))


@dataclass(frozen=True)
class Worker:
    """A worker and its latest telemetry: the host's load (what placement weighs) and the
    worker's own (its process and pool processes)."""

    name: str
    tags: tuple[str, ...]
    alive: bool
    running_jobs: int
    concurrency: int
    host_cpu_percent: float
    host_memory_percent: float
    process_cpu_percent: float  # of one core: two busy pool processes read about 200
    process_rss_mb: float
    gpu: Mapping[str, Any] | None  # utilization_percent, memory_percent
    last_seen: datetime

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Worker:
        host, process = body["host"], body["process"]
        return cls(
            name=str(body["name"]),
            tags=tuple(str(tag) for tag in body["tags"]),
            alive=bool(body["alive"]),
            running_jobs=int(body["running_jobs"]),
            concurrency=int(body["concurrency"]),
            host_cpu_percent=float(host["cpu_percent"]),
            host_memory_percent=float(host["memory_percent"]),
            process_cpu_percent=float(process["cpu_percent"]),
            process_rss_mb=float(process["rss_mb"]),
            gpu=_optional(lambda gpu: MappingProxyType(dict(gpu)), body["gpu"]),
            last_seen=_time(body["last_seen"]),
        )


@dataclass(frozen=True)
class ActiveWorkload:
    """A workload with queued or running jobs, as `GET /status` lists it."""

    id: int
    name: str
    status: str
    progress: float
    running_jobs: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ActiveWorkload:
        return cls(
            int(body["workload_id"]),
            str(body["workload_name"]),
            str(body["status"]),
            float(body["progress"]),
            int(body["running_jobs"]),
        )


@dataclass(frozen=True)
class Status:
    """The system as `GET /status` shows it to the caller."""

    system_name: str
    server_time: datetime
    active_workloads: tuple[ActiveWorkload, ...]
    workers: tuple[Worker, ...]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Status:
        return cls(
            str(body["system_name"]),
            _time(body["server_time"]),
            tuple(map(ActiveWorkload.from_json, body["active_workloads"])),
            tuple(map(Worker.from_json, body["workers"])),
        )


@dataclass(frozen=True)
class ManifestEntry:
    """One image of a workload as an archive's manifest lists it."""

    image_id: int
    filename: str | None
    status: str
    error: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            int(body["image_id"]),
            _optional(str, body["filename"]),
            str(body["status"]),
            _optional(str, body["error"]),
        )


@dataclass(frozen=True)
class Manifest:
    """An archive's `manifest.json`: every image of the workload when it was read, with the
    ones the archive holds (`type` original: all; filtered: the `done` ones)."""

    workload_id: int
    type: str
    images: tuple[ManifestEntry, ...]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Manifest:
        return cls(
            int(body["workload_id"]),
            str(body["type"]),
            tuple(map(ManifestEntry.from_json, body["images"])),
        )
