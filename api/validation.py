"""Pure checks of workload fields; each failure names the field and what to send."""

from __future__ import annotations

import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from api.errors import bad_request
from foundation import defaults
from imaging import FilterError, validate_filter_params


@dataclass(frozen=True)
class WorkloadSpec:
    """A validated request to create a workload."""

    name: str
    filter_name: str
    params: dict[str, Any]
    tags: list[str]


def generated_workload_name() -> str:
    return time.strftime("workload-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def validate_workload_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("'workload_name' must be a non-empty string", "invalid_workload_name")
    if len(value) > defaults.MAX_WORKLOAD_NAME_CHARS:
        raise bad_request(
            f"'workload_name' must be at most {defaults.MAX_WORKLOAD_NAME_CHARS} characters",
            "invalid_workload_name",
        )
    if "/" in value or "\\" in value or ".." in value:
        raise bad_request(
            "'workload_name' may not contain '/', '\\' or '..'", "invalid_workload_name"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise bad_request(
            "'workload_name' may not contain control characters", "invalid_workload_name"
        )
    return value.strip()


def validate_tags(value: Any) -> list[str]:
    """Accept a list of short strings, or one comma-separated string (form fields)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [tag.strip() for tag in value.split(",") if tag.strip()]
    if not isinstance(value, list) or len(value) > defaults.MAX_TAGS:
        raise bad_request(
            f"'tags' must be a list of at most {defaults.MAX_TAGS} strings", "invalid_tags"
        )
    for tag in value:
        if (
            not isinstance(tag, str)
            or not tag
            or len(tag) > defaults.MAX_TAG_CHARS
            or not all(ch.isalnum() or ch in "-_." for ch in tag)
        ):
            raise bad_request(
                f"each tag must be 1-{defaults.MAX_TAG_CHARS} letters, digits, '-', '_' or '.'",
                "invalid_tags",
            )
    return sorted(set(value))


def validate_workload_request(fields: dict[str, Any]) -> WorkloadSpec:
    """Turn the fields of POST /workloads into a WorkloadSpec, or raise a 400 APIError."""
    name = fields.get("workload_name")
    name = generated_workload_name() if name is None else validate_workload_name(name)
    filter_name = fields.get("filter", defaults.DEFAULT_FILTER)
    if not isinstance(filter_name, str):
        raise bad_request("'filter' must be a string", "unknown_filter")
    try:
        params = validate_filter_params(filter_name, fields)
    except FilterError as e:
        code = "unknown_filter" if "unknown filter" in str(e) else "invalid_parameter"
        raise bad_request(str(e), code) from e
    return WorkloadSpec(name, filter_name, params, validate_tags(fields.get("tags")))
